package instance

// UpdateKitChange hands one joint-operation Kit change (a row of kit_deliveries) to the instance's workflow,
// which delivers it to the seller's systems through the provisioning webhook in order with its other steps
// (docs/koogallery.md, "Delivery to the seller"). The Update ID is "kit-<deliveryId>".
const UpdateKitChange = "kitChange"

// StepKit is the step that delivers a Kit change.
const StepKit = "kit"

// KitChange is the payload of UpdateKitChange: identifiers only. What changed (users, names, …) stays in
// PostgreSQL and is read by the delivering activity, so no personal data or secret enters workflow history.
type KitChange struct {
	DeliveryID int64  `json:"deliveryId"`
	Kind       string `json:"kind"` // tenant, application, users, org
	Call       string `json:"call"` // tenantSync, applicationSync, …
	Flag       string `json:"flag"` // add, modify, delete, cancel
	TenantID   string `json:"tenantId"`
}
