package store

// AlertFreezeAfterRenewal is raised by an instance's workflow when the marketplace delivers a FREEZE after a
// renewal already extended the instance past the expiry it was for (lifecycle.StaleFreeze): the instance is not
// frozen and a person checks the order.
const AlertFreezeAfterRenewal = "freeze-after-renewal"
