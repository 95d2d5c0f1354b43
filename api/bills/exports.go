package bills

import (
	"github.com/gin-gonic/gin"

	"github.com/kooflow/kooflow/internal/app"
	"github.com/kooflow/kooflow/internal/catalog"
	"github.com/kooflow/kooflow/internal/ledger"
)

// Exports returns the bill export handlers (CSV and XLSX) for another console front end to mount behind its own
// authentication, so a download there is the same file as from /console/v1. They read the route parameters
// :period and :productType.
func Exports(d app.Deps) (csv, xlsx gin.HandlerFunc) {
	h := &handlers{d: d, now: d.Clock(), store: &ledger.Store{Pool: d.Pool}, catalog: d.Catalog}
	return h.exportCSV, h.exportXLSX
}

// ProductTypes parses a product type as the bill routes do.
func ProductTypes(s string) (catalog.ProductType, error) {
	ts, err := ledger.ParseProductTypes([]string{s})
	if err != nil {
		return "", err
	}
	return ts[0], nil
}
