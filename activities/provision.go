package activities

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/kooflow/kooflow/internal/metrics"

	"github.com/kooflow/kooflow/internal/config"
	"github.com/kooflow/kooflow/internal/provisioning"
	"github.com/kooflow/kooflow/internal/store"
)

// ProvisionInput is one provisioning event and where the product is provisioned.
type ProvisionInput struct {
	Event provisioning.Event `json:"event"`
	// Target is the catalog's provisioning target: "builtin", "webhook", or "" for an unknown product.
	Target string `json:"target"`
	// Record, when set, is the step's read-model write, applied once the provisioner has acted: the workflow
	// then needs no local activity (a billed action) after the call.
	Record *store.Write `json:"record,omitempty"`
}

// ProvisionResult says who acted and whether appInfo was stored. The appInfo itself (with the initial password)
// stays out of workflow history: it goes straight to the instances row the gateway answers queryInstance from.
type ProvisionResult struct {
	Provisioner   string `json:"provisioner"`
	AppInfoStored bool   `json:"appInfoStored"`
	FrontEndURL   string `json:"frontEndUrl,omitempty"`
	// Recorded says ProvisionInput.Record was applied.
	Recorded bool `json:"recorded,omitempty"`
}

// Provision carries out one event through the instance's provisioner. Dial tests always take the built-in path,
// so they never reach the seller's real systems. A purchase (create) the endpoint refuses permanently is recorded
// with its newInstance code for the gateway to answer, and alerted; the next attempt clears it. For create, the appInfo is stored once: a retry after a crash
// keeps the first one the customer may already have been shown.
func (a *Lifecycle) Provision(ctx context.Context, in ProvisionInput) (ProvisionResult, error) {
	p, err := a.provisioner(in)
	if err != nil {
		return ProvisionResult{}, err
	}
	purchase := in.Event.Type == provisioning.Create && !in.Event.TestFlag
	if purchase {
		// Tried again (an operator's resume): the marketplace hears "in progress" again until this attempt ends.
		if err := a.Store.ClearPurchaseRefusal(ctx, in.Event.InstanceID); err != nil {
			return ProvisionResult{}, err
		}
	}
	began := time.Now()
	sctx, span := provisionSpan(ctx, p, in.Event)
	res, err := p.Apply(sctx, in.Event)
	endProvisionSpan(span, err)
	a.Metrics.ObserveProvisioning(string(in.Event.Type), provisionOutcome(err), time.Since(began))
	if err != nil {
		if code, msg, refused := provisioning.RefusalCode(err); refused && purchase {
			// Reported to the marketplace (docs/koogallery.md, "Refused purchases"), and an alert for a person.
			if rerr := a.Store.RecordPurchaseRefusal(ctx, store.PurchaseRefusal{InstanceID: in.Event.InstanceID,
				OrderID: in.Event.OrderID, Code: code, Message: msg, At: time.Now()}); rerr != nil {
				return ProvisionResult{}, fmt.Errorf("%s refused the purchase of instance %s (%s): %w", p.Name(), in.Event.InstanceID, code, rerr)
			}
		}
		if !provisioning.Retryable(err) {
			return ProvisionResult{}, needsPerson(fmt.Sprintf("%s %s: %s", p.Name(), in.Event.Type, err.Error()), err)
		}
		return ProvisionResult{}, fmt.Errorf("%s %s for instance %s: %w", p.Name(), in.Event.Type, in.Event.InstanceID, err)
	}
	out := ProvisionResult{Provisioner: p.Name()}
	if in.Event.Type == provisioning.Create && res.AppInfo != nil {
		stored, err := a.storeAppInfo(ctx, in.Event.InstanceID, res.AppInfo)
		if err != nil {
			return ProvisionResult{}, err
		}
		out.AppInfoStored, out.FrontEndURL = true, stored.FrontEndURL
	}
	a.log().InfoContext(ctx, "provisioned", "instance_id", in.Event.InstanceID, "event", in.Event.Type,
		"event_id", in.Event.EventID, "provisioner", p.Name(), "test_flag", in.Event.TestFlag)
	if in.Record != nil {
		out.Recorded = a.recordAlong(ctx, *in.Record)
	}
	return out, nil
}

func (a *Lifecycle) provisioner(in ProvisionInput) (provisioning.Provisioner, error) {
	switch {
	case in.Event.TestFlag:
		return a.Builtin, nil
	case in.Target == "webhook":
		if a.Webhook == nil {
			return nil, needsPerson(fmt.Sprintf("product %s is provisioned by webhook, but KOOFLOW_PROVISIONER_URL is not set", in.Event.ProductID), nil)
		}
		return a.Webhook, nil
	case in.Target == "builtin":
		return a.Builtin, nil
	case a.Webhook != nil:
		// No provisioning named (or an unknown product): the seller's real provisioning.
		return a.Webhook, nil
	case a.BuiltinByDefault:
		return a.Builtin, nil
	}
	return nil, needsPerson(fmt.Sprintf("product %s names no provisioning in the catalog and no provisioning webhook is set, "+
		"so nothing can deliver it: set %s, give the product \"provisioning\" in the catalog, or %s=builtin for made-up demo access data; then resume",
		in.Event.ProductID, config.EnvProvisionerURL, config.EnvProvisioner), nil)
}

// storeAppInfo keeps the first appInfo stored for the instance and returns the stored one.
func (a *Lifecycle) storeAppInfo(ctx context.Context, instanceID string, info *provisioning.AppInfo) (provisioning.AppInfo, error) {
	b, err := json.Marshal(info)
	if err != nil {
		return provisioning.AppInfo{}, fmt.Errorf("encode appInfo: %w", err)
	}
	raw, err := a.Store.KeepAppInfo(ctx, instanceID, b)
	if err != nil {
		return provisioning.AppInfo{}, err
	}
	var stored provisioning.AppInfo
	if err := json.Unmarshal(raw, &stored); err != nil {
		return provisioning.AppInfo{}, fmt.Errorf("decode stored appInfo of instance %s: %w", instanceID, err)
	}
	return stored, nil
}

// provisionOutcome is the outcome label of a provisioning call.
func provisionOutcome(err error) string {
	switch _, _, refused := provisioning.RefusalCode(err); {
	case err == nil:
		return metrics.OutcomeOK
	case refused:
		return metrics.OutcomeRefused
	case provisioning.Retryable(err):
		return metrics.OutcomeRetryable
	}
	return metrics.OutcomeNeedsPerson
}
