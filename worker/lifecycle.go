package worker

import (
	"fmt"

	"github.com/kooflow/kooflow/activities"
	"github.com/kooflow/kooflow/catalog"
	"github.com/kooflow/kooflow/config"
	"github.com/kooflow/kooflow/koogallery/orderquery"
	"github.com/kooflow/kooflow/lifecycle"
	"github.com/kooflow/kooflow/provisioning"
	"github.com/kooflow/kooflow/workflows"
)

// lifecycleDeps builds the instance lifecycle's activities and workflow configuration from the worker's
// configuration: the catalog (KOOFLOW_CATALOG_FILE, else the development catalog), the marketplace order query
// (KOOGALLERY_AK/SK/API_ENDPOINT), the provisioners (KOOFLOW_PROVISIONER_URL for the webhook; the built-in one
// always answers dial tests), and the expiry safety net (KOOFLOW_EXPIRY_GRACE, KOOFLOW_EXPIRY_POLICY).
func lifecycleDeps(d Deps) (*activities.Lifecycle, workflows.LifecycleConfig, error) {
	cfg := d.Config
	var wcfg workflows.LifecycleConfig
	policy, err := lifecycle.ParsePolicy(cfg.ExpiryPolicy)
	if err != nil {
		return nil, wcfg, fmt.Errorf("%s: %w", config.EnvExpiryPolicy, err)
	}
	wcfg = workflows.LifecycleConfig{ExpiryGrace: cfg.ExpiryGrace, ExpiryPolicy: policy}

	var cat *catalog.Catalog
	if cfg.CatalogFile != "" {
		cat, err = catalog.Load(cfg.CatalogFile)
	} else {
		d.Log.Warn("no product catalog configured: using the development catalog", "set", config.EnvCatalogFile)
		cat, err = catalog.Parse(catalog.DevCatalog)
	}
	if err != nil {
		return nil, wcfg, fmt.Errorf("%s: %w", config.EnvCatalogFile, err)
	}

	a := &activities.Lifecycle{Pool: d.Pool, Catalog: cat, Builtin: provisioning.NewBuiltin(""), Log: d.Log}
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
	d.Log.Info("instance lifecycle configured", "products", len(cat.Products()), "order_query", a.Orders != nil,
		"webhook", cfg.ProvisionerURL != "", "expiry_grace", cfg.ExpiryGrace, "expiry_policy", policy)
	return a, wcfg, nil
}
