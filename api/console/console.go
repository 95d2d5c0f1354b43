// Package console is the seller's and operator's console API for instances: list and filter instances, show one
// with its orders, timeline, refunds, alerts and parked steps, take the supervision steps, request and decide
// refunds, resume or skip a parked step, and view the product catalog with warnings for unknown products.
//
// Reads come from the PostgreSQL read model. Actions become validated Updates on the instance's workflow; a step
// the instance's state does not allow is answered 409 with the workflow's reason, and the acting party and
// console user are recorded with it.
package console

import (
	"net/http"

	"github.com/kooflow/kooflow/api/httpx"
	"github.com/kooflow/kooflow/internal/app"
	"github.com/kooflow/kooflow/internal/config"
	"github.com/kooflow/kooflow/internal/instance"
	"github.com/kooflow/kooflow/internal/store"
)

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
func Mount(g *httpx.Console, d app.Deps) {
	h := &handlers{d: d, store: &store.Store{Pool: d.Pool}, instances: instance.Client{Temporal: d.Temporal}, actions: NewActions(d)}
	g.GET("/instances", config.ScopeRead, h.list)
	g.GET("/instances/:id", config.ScopeRead, h.get)
	// The step decides: the customer's steps need customer, the seller's operate (checked in the handler).
	g.Handle(http.MethodPost, "/instances/:id/supervision", []config.Scope{config.ScopeCustomer, config.ScopeOperate}, h.supervision)
	g.POST("/instances/:id/refunds", config.ScopeCustomer, h.requestRefund)
	g.POST("/instances/:id/refunds/:refundId/decision", config.ScopeFinance, h.decideRefund)
	g.POST("/instances/:id/operator", config.ScopeOperate, h.operator)
	g.GET("/alerts", config.ScopeRead, h.alerts)
	g.GET("/catalog", config.ScopeRead, h.catalog)
}

type handlers struct {
	d         app.Deps
	store     *store.Store
	instances instance.Client
	actions   *Actions
}
