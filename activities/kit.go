package activities

import (
	"context"
	"fmt"

	"github.com/kooflow/kooflow/internal/provisioning"
)

// DeliverKitInput names one Kit change (a kit_deliveries row) and how the instance is provisioned.
type DeliverKitInput struct {
	InstanceID string `json:"instanceId"`
	DeliveryID int64  `json:"deliveryId"`
	// Target is the catalog's provisioning target of the instance's product, as for Provision.
	Target   string `json:"target"`
	TestFlag bool   `json:"testFlag,omitempty"`
}

// DeliverKitResult says who took the change; Skipped when there was nothing left to deliver (the delivery was
// dropped, or released with its instance) or it had been delivered before.
type DeliverKitResult struct {
	Provisioner string `json:"provisioner,omitempty"`
	Kind        string `json:"kind,omitempty"`
	Skipped     bool   `json:"skipped,omitempty"`
}

// DeliverKit sends one Kit change to the seller's systems through the instance's provisioner (the webhook, or
// the built-in provisioner, which takes it without acting), with the same failure classification as Provision.
// The change's content is read here from PostgreSQL, never carried through workflow history. The event ID is
// "kit-<deliveryId>", the same on every retry.
func (a *Lifecycle) DeliverKit(ctx context.Context, in DeliverKitInput) (DeliverKitResult, error) {
	d, found, err := a.Store.KitDeliveryByID(ctx, in.DeliveryID)
	if err != nil {
		return DeliverKitResult{}, err
	}
	if !found || d.DeliveredAt != nil {
		return DeliverKitResult{Skipped: true}, nil
	}
	if d.InstanceID != in.InstanceID {
		return DeliverKitResult{}, needsPerson(fmt.Sprintf("Kit delivery %d belongs to instance %s, not %s", d.DeliveryID, d.InstanceID, in.InstanceID), nil)
	}
	ev := provisioning.Event{
		EventID: fmt.Sprintf("kit-%d", d.DeliveryID), Type: provisioning.Kind(d.Kind), InstanceID: d.InstanceID,
		TestFlag: in.TestFlag, OccurredAt: d.CreatedAt.UTC(), Kit: d.Detail,
	}
	pin := ProvisionInput{Event: ev, Target: in.Target}
	p, err := a.provisioner(pin)
	if err != nil {
		return DeliverKitResult{}, err
	}
	sctx, span := provisionSpan(ctx, p, ev)
	_, err = p.Apply(sctx, ev)
	endProvisionSpan(span, err)
	if err != nil {
		if !provisioning.Retryable(err) {
			return DeliverKitResult{}, needsPerson(fmt.Sprintf("%s %s: %s", p.Name(), ev.Type, err.Error()), err)
		}
		return DeliverKitResult{}, fmt.Errorf("%s %s for instance %s: %w", p.Name(), ev.Type, ev.InstanceID, err)
	}
	if err := a.Store.KitDelivered(ctx, d.DeliveryID); err != nil {
		return DeliverKitResult{}, err
	}
	a.log().InfoContext(ctx, "Kit change delivered", "instance_id", d.InstanceID, "event", ev.Type,
		"event_id", ev.EventID, "provisioner", p.Name())
	return DeliverKitResult{Provisioner: p.Name(), Kind: d.Kind}, nil
}
