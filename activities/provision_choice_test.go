package activities

import (
	"context"
	"strings"
	"testing"

	"github.com/kooflow/kooflow/internal/provisioning"
)

type namedProvisioner string

func (n namedProvisioner) Name() string { return string(n) }
func (n namedProvisioner) Apply(context.Context, provisioning.Event) (provisioning.Result, error) {
	return provisioning.Result{}, nil
}

// The built-in provisioner (made-up access data) serves only dial tests, products that name it, and — with
// KOOFLOW_PROVISIONER=builtin — products that name none when no webhook is set; anything else needs a person.
func TestProvisionerChoice(t *testing.T) {
	builtin, webhook := namedProvisioner("builtin"), namedProvisioner("webhook")
	for _, c := range []struct {
		name       string
		target     string
		test       bool
		hook, dflt bool
		want       string // "" = parks
	}{
		{"product names builtin", "builtin", false, false, false, "builtin"},
		{"product names builtin, webhook set", "builtin", false, true, false, "builtin"},
		{"product names webhook", "webhook", false, true, false, "webhook"},
		{"product names webhook, none set", "webhook", false, false, true, ""},
		{"no provisioning named, webhook set", "", false, true, false, "webhook"},
		{"no provisioning named, nothing set", "", false, false, false, ""},
		{"no provisioning named, KOOFLOW_PROVISIONER=builtin", "", false, false, true, "builtin"},
		{"dial test", "", true, false, false, "builtin"},
		{"dial test of a webhook product", "webhook", true, true, false, "builtin"},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := &Lifecycle{Builtin: builtin, BuiltinByDefault: c.dflt}
			if c.hook {
				a.Webhook = webhook
			}
			p, err := a.provisioner(ProvisionInput{Target: c.target, Event: provisioning.Event{ProductID: "P-1", TestFlag: c.test}})
			if c.want == "" {
				if !IsNeedsPerson(err) || !strings.Contains(err.Error(), "P-1") {
					t.Fatalf("want a parking naming the product, got %v %v", p, err)
				}
				return
			}
			if err != nil || p.Name() != c.want {
				t.Fatalf("got %v %v, want %s", p, err, c.want)
			}
		})
	}
}
