package worker

import (
	"fmt"

	"github.com/kooflow/kooflow/activities"
	"github.com/kooflow/kooflow/internal/app"
	"github.com/kooflow/kooflow/internal/config"
	"github.com/kooflow/kooflow/internal/koogallery/orderquery"
	"github.com/kooflow/kooflow/internal/lifecycle"
	"github.com/kooflow/kooflow/internal/provisioning"
	"github.com/kooflow/kooflow/internal/store"
	"github.com/kooflow/kooflow/workflows"
)

// lifecycleActivities builds the instance lifecycle's activities and workflow configuration from the worker's
// configuration: the marketplace order query (KOOGALLERY_AK/SK/API_ENDPOINT), the provisioners
// (KOOFLOW_PROVISIONER_URL for the webhook; the built-in one always answers dial tests), and the expiry safety net
// (KOOFLOW_EXPIRY_GRACE, KOOFLOW_EXPIRY_POLICY).
func lifecycleActivities(d app.Deps) (*activities.Lifecycle, workflows.LifecycleConfig, error) {
	cfg := d.Config
	var wcfg workflows.LifecycleConfig
	policy, err := lifecycle.ParsePolicy(cfg.ExpiryPolicy)
	if err != nil {
		return nil, wcfg, fmt.Errorf("%s: %w", config.EnvExpiryPolicy, err)
	}
	wcfg = workflows.LifecycleConfig{ExpiryGrace: cfg.ExpiryGrace, ExpiryPolicy: policy, RenewalsPerRun: cfg.RenewalsPerRun}

	a := &activities.Lifecycle{Store: &store.Store{Pool: d.Pool, Keys: d.Keys}, Catalog: d.Catalog, Builtin: provisioning.NewBuiltin(""), Log: d.Log,
		Metrics: d.WorkerMetrics, BuiltinByDefault: d.Config.Provisioner == "builtin"}
	if cfg.MarketAK != "" || cfg.MarketSK != "" {
		q, err := orderquery.NewClient(orderquery.Options{Endpoint: cfg.MarketEndpoint, AK: cfg.MarketAK, SK: cfg.MarketSK,
			CAFile: cfg.MarketCAFile})
		if err != nil {
			return nil, wcfg, err
		}
		a.Orders = q
	} else {
		d.Log.Warn("the marketplace order query is not configured: every new order will park until it is",
			"set", config.EnvMarketAK+", "+config.EnvMarketSK)
	}
	if cfg.ProvisionerURL != "" {
		wh, err := provisioning.NewWebhook(cfg.ProvisionerURL, cfg.ProvisionerSecret.Reveal(), nil)
		if err != nil {
			return nil, wcfg, fmt.Errorf("%s: %w", config.EnvProvisionerURL, err)
		}
		a.Webhook = wh
	}
	d.Log.Info("instance lifecycle configured", "catalog", d.CatalogSource, "products", len(d.Catalog.Products()),
		"order_query", a.Orders != nil, "webhook", cfg.ProvisionerURL != "", "expiry_grace", cfg.ExpiryGrace,
		"expiry_policy", policy)
	return a, wcfg, nil
}
