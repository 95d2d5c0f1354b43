package recon

import (
	"encoding/json"

	"github.com/shopspring/decimal"
)

// The console shows money as exact decimal strings with two places ("1425.00"), as the bills console does; these
// encoders put the amounts of reconciliation's answers in that form. Decoding accepts any decimal string.

func fixed(d decimal.Decimal) string { return d.StringFixed(2) }

func fixedPtr(d *decimal.Decimal) *string {
	if d == nil {
		return nil
	}
	s := d.StringFixed(2)
	return &s
}

// MarshalJSON writes the amounts with two places.
func (s Summary) MarshalJSON() ([]byte, error) {
	type plain Summary
	return json.Marshal(struct {
		plain
		MatchedTotal     string `json:"matchedTotal"`
		ExplainedTotal   string `json:"explainedTotal"`
		UnexplainedTotal string `json:"unexplainedTotal"`
		MarketplaceTotal string `json:"marketplaceTotal"`
		KooflowTotal     string `json:"kooflowTotal"`
	}{plain(s), fixed(s.MatchedTotal), fixed(s.ExplainedTotal), fixed(s.UnexplainedTotal), fixed(s.MarketplaceTotal), fixed(s.KooflowTotal)})
}

// MarshalJSON writes the amounts with two places.
func (l DiffLine) MarshalJSON() ([]byte, error) {
	type plain DiffLine
	return json.Marshal(struct {
		plain
		MarketplaceSettlement *string `json:"marketplaceSettlement,omitempty"`
		KooflowSettlement     *string `json:"kooflowSettlement,omitempty"`
		MarketplaceRevenue    *string `json:"marketplaceRevenue,omitempty"`
		KooflowRevenue        *string `json:"kooflowRevenue,omitempty"`
		MarketplaceFee        *string `json:"marketplaceFee,omitempty"`
		KooflowFee            *string `json:"kooflowFee,omitempty"`
		Difference            string  `json:"difference"`
	}{plain(l), fixedPtr(l.MarketplaceSettlement), fixedPtr(l.KooflowSettlement), fixedPtr(l.MarketplaceRevenue),
		fixedPtr(l.KooflowRevenue), fixedPtr(l.MarketplaceFee), fixedPtr(l.KooflowFee), fixed(l.Difference)})
}

// MarshalJSON writes the amounts with two places.
func (r Receivable) MarshalJSON() ([]byte, error) {
	type plain Receivable
	return json.Marshal(struct {
		plain
		Billed           string `json:"billed"`
		KooflowAmountDue string `json:"kooflowAmountDue"`
		Received         string `json:"received"`
		Outstanding      string `json:"outstanding"`
	}{plain(r), fixed(r.Billed), fixed(r.KooflowAmountDue), fixed(r.Received), fixed(r.Outstanding)})
}

// MarshalJSON writes the amount with two places.
func (i Invoice) MarshalJSON() ([]byte, error) {
	type plain Invoice
	return json.Marshal(struct {
		plain
		Amount string `json:"amount"`
	}{plain(i), fixed(i.Amount)})
}

// MarshalJSON writes the amount with two places.
func (r Receipt) MarshalJSON() ([]byte, error) {
	type plain Receipt
	return json.Marshal(struct {
		plain
		Amount string `json:"amount"`
	}{plain(r), fixed(r.Amount)})
}

// MarshalJSON writes the totals with two places.
func (im Import) MarshalJSON() ([]byte, error) {
	type plain Import
	return json.Marshal(struct {
		plain
		RevenueTotal    *string `json:"revenueTotal,omitempty"`
		FeeTotal        *string `json:"platformFeeTotal,omitempty"`
		SettlementTotal string  `json:"settlementTotal"`
	}{plain(im), fixedPtr(im.RevenueTotal), fixedPtr(im.FeeTotal), fixed(im.SettlementTotal)})
}
