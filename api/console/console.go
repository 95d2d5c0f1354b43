// Package console is the seller's and operator's console API for instances: list and filter instances, show one
// with its orders, timeline, refunds, alerts and parked steps, take the supervision steps, request and decide
// refunds, resume or skip a parked step, and view the product catalog with warnings for unknown products.
//
// Reads come from the PostgreSQL read model. Actions become validated Updates on the instance's workflow; a step
// the instance's state does not allow is answered 409 with the workflow's reason, and the acting party and
// console user are recorded with it.
package console

import (
	"fmt"
	"log/slog"

	"github.com/gin-gonic/gin"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.temporal.io/sdk/client"

	"github.com/kooflow/kooflow/catalog"
	"github.com/kooflow/kooflow/config"
)

// Deps are what the console handlers need.
type Deps struct {
	Config   config.Config
	Log      *slog.Logger
	Pool     *pgxpool.Pool
	Temporal client.Client
	// Catalog is the product catalog the worker also loads; CatalogSource says where it came from.
	Catalog       *catalog.Catalog
	CatalogSource string
}

// LoadCatalog loads the catalog as the worker does: KOOFLOW_CATALOG_FILE, else the development catalog.
func LoadCatalog(cfg config.Config) (*catalog.Catalog, string, error) {
	if cfg.CatalogFile != "" {
		c, err := catalog.Load(cfg.CatalogFile)
		return c, cfg.CatalogFile, err
	}
	c, err := catalog.Parse(catalog.DevCatalog)
	return c, "built-in development catalog (set " + config.EnvCatalogFile + ")", err
}

// Mount adds the instance routes to the console group (which already requires a console token):
//
//	GET  /console/v1/instances                                  list, filters, keyset pagination
//	GET  /console/v1/instances/:id                              one instance: orders, timeline, refunds, alerts, parkings
//	POST /console/v1/instances/:id/supervision                  a supervision step
//	POST /console/v1/instances/:id/refunds                      a refund request
//	POST /console/v1/instances/:id/refunds/:refundId/decision   the seller's decision: approve or reject
//	POST /console/v1/instances/:id/operator                     resume or skip the parked step
//	GET  /console/v1/alerts                                     open alerts, newest first
//	GET  /console/v1/catalog                                    the product catalog, with warnings
//
// A nil Catalog is loaded with LoadCatalog.
func Mount(g *gin.RouterGroup, d Deps) error {
	if d.Catalog == nil {
		c, src, err := LoadCatalog(d.Config)
		if err != nil {
			return fmt.Errorf("console: %s: %w", config.EnvCatalogFile, err)
		}
		d.Catalog, d.CatalogSource = c, src
	}
	h := &handlers{d: d}
	g.GET("/instances", h.list)
	g.GET("/instances/:id", h.get)
	g.POST("/instances/:id/supervision", h.supervision)
	g.POST("/instances/:id/refunds", h.requestRefund)
	g.POST("/instances/:id/refunds/:refundId/decision", h.decideRefund)
	g.POST("/instances/:id/operator", h.operator)
	g.GET("/alerts", h.alerts)
	g.GET("/catalog", h.catalog)
	return nil
}

type handlers struct{ d Deps }
