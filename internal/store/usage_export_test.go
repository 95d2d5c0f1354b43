package store

// StoreUsageSQL exposes the statement to the plan test.
const StoreUsageSQL = storeUsageSQL
