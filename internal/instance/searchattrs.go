package instance

import "go.temporal.io/sdk/temporal"

// Search attributes kooflow registers on its namespace. They carry no personal data (values are stored
// unencrypted in visibility; docs/architecture.md, "Personal data and secrets"), only marketplace keys and
// states, so operators can filter in the Temporal web UI, e.g. `Parked = true` or
// `LifecycleState = "FROZEN" AND ExpireTime < "2026-12-01T00:00:00Z"`.
var (
	SAOrderID          = temporal.NewSearchAttributeKeyKeyword("OrderId")
	SAInstanceID       = temporal.NewSearchAttributeKeyKeyword("InstanceId")
	SAProductID        = temporal.NewSearchAttributeKeyKeyword("ProductId")
	SALifecycleState   = temporal.NewSearchAttributeKeyKeyword("LifecycleState")
	SASupervisionState = temporal.NewSearchAttributeKeyKeyword("SupervisionState")
	SAExpireTime       = temporal.NewSearchAttributeKeyTime("ExpireTime")
	SAParked           = temporal.NewSearchAttributeKeyBool("Parked")
	SATestFlag         = temporal.NewSearchAttributeKeyBool("TestFlag")
	SASettlementPeriod = temporal.NewSearchAttributeKeyKeyword("SettlementPeriod")
)

// SearchAttribute describes one custom search attribute for registration.
type SearchAttribute struct {
	Name string
	Type string // the Temporal CLI's type name: Keyword, Bool, Datetime, Int, Double, Text
}

// SearchAttributes lists every custom search attribute kooflow uses, for `temporal server start-dev
// --search-attribute` and `temporal operator search-attribute create`.
func SearchAttributes() []SearchAttribute {
	return []SearchAttribute{
		{SAOrderID.GetName(), "Keyword"},
		{SAInstanceID.GetName(), "Keyword"},
		{SAProductID.GetName(), "Keyword"},
		{SALifecycleState.GetName(), "Keyword"},
		{SASupervisionState.GetName(), "Keyword"},
		{SAExpireTime.GetName(), "Datetime"},
		{SAParked.GetName(), "Bool"},
		{SATestFlag.GetName(), "Bool"},
		{SASettlementPeriod.GetName(), "Keyword"},
	}
}
