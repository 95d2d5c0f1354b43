// Package usageclient sends the usage of pay-per-use instances to kooflow's usage intake,
// POST /usage/v1/records (docs/koogallery.md, "Usage intake"). kooflow pushes what it takes to the marketplace
// hourly; a seller's systems only report each record once under an id of their own, and may send it again (after a
// timeout, a restart) without it being counted twice.
package usageclient

import (
	"time"

	"github.com/shopspring/decimal"
)

// MaxBatch is the most records one call may carry.
const MaxBatch = 1000

// Record is one usage record: Value units of the product's usage unit used by the pay-per-use instance
// InstanceID, either at Time or over [Start, End] (both within one UTC hour; End may be the next hour exactly).
// ID is the seller's own id for the record, unique across all of the seller's records: a record sent again under
// the same id is acknowledged as a duplicate and never counted twice.
type Record struct {
	ID         string          `json:"id"`
	InstanceID string          `json:"instanceId"`
	Value      decimal.Decimal `json:"value"`
	Time       *time.Time      `json:"time,omitempty"`
	Start      *time.Time      `json:"start,omitempty"`
	End        *time.Time      `json:"end,omitempty"`
}

// Request is the body of POST /usage/v1/records.
type Request struct {
	Records []Record `json:"records"`
}

// Status of one record in the answer.
type Status string

const (
	// Accepted: stored now; it will be pushed to the marketplace with its hour.
	Accepted Status = "accepted"
	// Duplicate: a record with this id and the same content was stored before; nothing changed.
	Duplicate Status = "duplicate"
	// Refused: not stored, for the Reason given; sending it again unchanged is refused again.
	Refused Status = "refused"
)

// Result answers one record, in the order the records were sent.
type Result struct {
	ID     string `json:"id"`
	Status Status `json:"status"`
	// Reason says why a record was refused (or, for a duplicate, that it was stored before).
	Reason string `json:"reason,omitempty"`
}

// Response is the answer of POST /usage/v1/records (HTTP 200): a result per record and the counts. Records are
// answered one by one; a refused record does not stop the others from being stored.
type Response struct {
	Accepted  int      `json:"accepted"`
	Duplicate int      `json:"duplicate"`
	Refused   int      `json:"refused"`
	Results   []Result `json:"results"`
}
