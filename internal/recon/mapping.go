// Package recon reconciles kooflow's bills with the marketplace's: it imports the seller center's bill-detail
// export (详单导出) through a column mapping that is configuration, diffs an import with kooflow's bill of the same
// period and product type to the fen and explains each difference with settlement's rules, and follows the
// marketplace's bill through its states (出账 → 会签 → 申付 → 支付) until the money is received
// (docs/settlement.md, "Reconciliation with the marketplace's bill").
package recon

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/kooflow/kooflow/internal/catalog"
)

// Fields of a bill-detail row the mapping can name.
const (
	FieldOrderID     = "orderId"
	FieldOrderLineID = "orderLineId"
	FieldOrderType   = "orderType"
	FieldRevenue     = "revenue"
	FieldPlatformFee = "platformFee"
	FieldSettlement  = "settlement"
	FieldPeriod      = "period"
	FieldBillStatus  = "billStatus"
	// A pay-per-use usage row bills an instance's usage of a consumption month; the row is keyed as kooflow keys
	// its usage line (docs/settlement.md, "Pay-per-use usage"), so the two are compared like order lines.
	FieldInstanceID    = "instanceId"
	FieldUsageMonth    = "usageMonth"
	FieldUsageQuantity = "usageQuantity"
)

var knownFields = []string{FieldOrderID, FieldOrderLineID, FieldOrderType, FieldRevenue, FieldPlatformFee, FieldSettlement,
	FieldPeriod, FieldBillStatus, FieldInstanceID, FieldUsageMonth, FieldUsageQuantity}

//go:embed mapping.json
var defaultMapping []byte

// Mapping says under which headers each field appears in an export. The real export's headers differ by product
// type and change over time, so they are a file, not code: DefaultMapping is embedded, LoadMapping reads another.
type Mapping struct {
	Comment string `json:"comment,omitempty"`
	// Columns lists, per field, the headers it may appear under, in order of preference.
	Columns map[string][]string `json:"columns"`
	// ByProductType replaces Columns' entries for one product type.
	ByProductType map[string]map[string][]string `json:"byProductType,omitempty"`
	// Required fields must have a column.
	Required []string `json:"required"`
	// BillStatusValues maps the export's bill status words to kooflow's bill states.
	BillStatusValues map[string]string `json:"billStatusValues,omitempty"`
}

// DefaultMapping is the mapping shipped with kooflow.
func DefaultMapping() Mapping {
	m, err := ParseMapping(defaultMapping)
	if err != nil {
		panic("embedded recon mapping: " + err.Error()) // a build that ships a broken file must not start
	}
	return m
}

// LoadMapping reads a mapping file; an empty path is the default mapping.
func LoadMapping(path string) (Mapping, error) {
	if path == "" {
		return DefaultMapping(), nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return Mapping{}, fmt.Errorf("read column mapping: %w", err)
	}
	m, err := ParseMapping(b)
	if err != nil {
		return m, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// ParseMapping reads and checks a mapping: known fields only, orderId and settlement always required, bill status
// values naming real states.
func ParseMapping(b []byte) (Mapping, error) {
	var m Mapping
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return m, fmt.Errorf("column mapping is not the expected JSON: %w", err)
	}
	check := func(where string, cols map[string][]string) error {
		for f, hs := range cols {
			if !slices.Contains(knownFields, f) {
				return fmt.Errorf("column mapping %s: unknown field %q (known: %s)", where, f, strings.Join(knownFields, ", "))
			}
			if len(hs) == 0 {
				return fmt.Errorf("column mapping %s: field %q lists no headers", where, f)
			}
		}
		return nil
	}
	if err := check("columns", m.Columns); err != nil {
		return m, err
	}
	for t, cols := range m.ByProductType {
		if t != string(catalog.General) && t != string(catalog.JointOperation) {
			return m, fmt.Errorf("column mapping byProductType: %q is not a product type", t)
		}
		if err := check("byProductType."+t, cols); err != nil {
			return m, err
		}
	}
	for _, f := range []string{FieldOrderID, FieldSettlement} {
		if !slices.Contains(m.Required, f) {
			m.Required = append(m.Required, f)
		}
	}
	for _, f := range m.Required {
		if !slices.Contains(knownFields, f) {
			return m, fmt.Errorf("column mapping required: unknown field %q", f)
		}
	}
	for word, st := range m.BillStatusValues {
		if _, ok := stateIndex[BillState(st)]; !ok {
			return m, fmt.Errorf("column mapping billStatusValues: %q maps to %q, which is not a bill state", word, st)
		}
	}
	return m, nil
}

// headersFor is the headers of each field for a product type.
func (m Mapping) headersFor(t catalog.ProductType) map[string][]string {
	out := map[string][]string{}
	for f, hs := range m.Columns {
		out[f] = hs
	}
	for f, hs := range m.ByProductType[string(t)] {
		out[f] = hs
	}
	return out
}

// normalizeHeader compares headers loosely: case, spaces, underscores, hyphens and full-width brackets ignored.
func normalizeHeader(s string) string {
	return headerNoise.Replace(strings.ToLower(strings.TrimSpace(s)))
}

var headerNoise = strings.NewReplacer(" ", "", "_", "", "-", "", "\u3000", "", "（", "(", "）", ")", "\ufeff", "")
