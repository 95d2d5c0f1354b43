package koogallery

// Order types: the marketplace's orderInfo.orderType values, which the lifecycle records in orders.order_type as
// they come, plus OrderTypeRefund, kooflow's own type for a refund the seller approved. Settlement reads them
// back from that column (see the orders contract in internal/store).
const (
	OrderTypeNew           = "NEW"
	OrderTypeTrial         = "TRIAL"
	OrderTypeTrialToFormal = "TRIAL_TO_FORMAL"
	OrderTypeRenew         = "RENEW"
	OrderTypeChange        = "CHANGE"
	OrderTypeUnsubscribe   = "UNSUBSCRIBE" // refund of a new purchase or of a not-yet-effective renewal
	OrderTypeRefund        = "REFUND"      // seller-approved negotiated refund (kooflow's own, never from the marketplace)
)

// Charging modes (orderLine.chargingMode).
const (
	ChargingPeriod      = "PERIOD"
	ChargingOneTime     = "ONE_TIME"
	ChargingOnDemand    = "ON_DEMAND"
	ChargingOnDemandPkg = "ON_DEMAND_PKG"
)
