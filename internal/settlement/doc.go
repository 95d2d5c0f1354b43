// Package settlement holds the rules of monthly settlement (结算; docs/koogallery.md, "Settlement rules" and
// "Refunds in the guarantee period") as plain, deterministic Go: periods and bill dates in Beijing time with a
// holiday calendar, which order lines are eligible for a bill and when they count (attribution), how refunds net
// against the lines they refund, the amounts of a line with one rounding rule, and the per-product-type threshold
// below which a bill is carried forward.
//
// The close itself runs set-based in PostgreSQL (internal/ledger) and is orchestrated by a Temporal workflow per
// period (workflows.SettlementPeriod; docs/architecture.md, "The flow of one settlement"); the console reads
// bills through api/bills. The SQL applies the rules of this package row for row, and a test holds the two to
// the same answers on the same data.
package settlement
