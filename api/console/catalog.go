package console

import (
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/kooflow/kooflow/internal/catalog"
)

// CatalogView is GET /catalog: what the worker provisions and settles by, and what needs a person's look.
type CatalogView struct {
	Source   string            `json:"source"`
	Products []catalog.Product `json:"products"`
	Warnings []CatalogWarning  `json:"warnings"`
}

// CatalogWarning names a product instances use that the catalog does not describe well enough.
type CatalogWarning struct {
	ProductID string `json:"productId"`
	Instances int64  `json:"instances"`
	Message   string `json:"message"`
}

// catalog: GET /catalog
func (h *handlers) catalog(c *gin.Context) {
	view := CatalogView{Source: h.d.CatalogSource, Products: h.d.Catalog.Products(), Warnings: []CatalogWarning{}}
	inUse, err := h.store.ProductsInUse(c.Request.Context())
	if err != nil {
		h.internal(c, "read the products in use", err)
		return
	}
	for _, id := range slices.Sorted(maps.Keys(inUse)) {
		if _, known := h.d.Catalog.Lookup(id); !known {
			view.Warnings = append(view.Warnings, CatalogWarning{ProductID: id, Instances: inUse[id],
				Message: "not in the catalog: its instances are treated as supervised (nothing is settled before acceptance), general, with no platform fee configured; add it to the catalog file"})
		}
	}
	if h.d.Config.ProvisionerURL == "" {
		for _, p := range view.Products {
			if p.Provisioning == "webhook" {
				view.Warnings = append(view.Warnings, CatalogWarning{ProductID: p.ProductID,
					Message: "provisioned by webhook, but KOOFLOW_PROVISIONER_URL is not set: its new instances will park"})
			}
		}
	}
	c.JSON(http.StatusOK, view)
}

// newStrictDecoder reads a JSON body (at most 64 KiB) and refuses unknown fields, so a misspelt field is an
// error rather than silently ignored.
func newStrictDecoder(c *gin.Context) *json.Decoder {
	dec := json.NewDecoder(io.LimitReader(c.Request.Body, 64<<10))
	dec.DisallowUnknownFields()
	return dec
}

func itoa(n int) string { return strconv.Itoa(n) }
