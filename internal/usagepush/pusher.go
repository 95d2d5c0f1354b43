package usagepush

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/kooflow/kooflow/internal/koogallery/usagedata"
)

// Pushes is what the pusher needs of the marketplace client.
type Pushes interface {
	Push(ctx context.Context, records []usagedata.Record) (*usagedata.Exchange, error)
}

// Pusher drains pending usage records to the marketplace in batches.
type Pusher struct {
	Store  *Store
	Client Pushes
	Log    *slog.Logger
	// Worker names the process in the outbound log.
	Worker string
	// BatchSize is the records per push, at most usagedata.MaxRecords (the default).
	BatchSize int
	// Lease is how long a claimed batch is reserved for this pusher; 2 minutes if zero.
	Lease time.Duration
}

// Drained is what one Drain did.
type Drained struct {
	Batches int `json:"batches"`
	Outcomes
	// More says Drain stopped at its batch limit with records still pending.
	More bool `json:"more"`
}

// FailedError is a push the marketplace did not take as a whole; Retryable as in usagedata.Error.
type FailedError struct {
	Err       *usagedata.Error
	Retryable bool
}

func (e *FailedError) Error() string { return e.Err.Error() }
func (e *FailedError) Unwrap() error { return e.Err }

// Drain pushes pending records (of one instance, or of all) oldest window first until none is left or maxBatches
// pushes were made (0: no limit). After each push it calls progress (the activity's heartbeat). A push that fails
// as a whole stops the drain with its records released for the next attempt.
func (p *Pusher) Drain(ctx context.Context, instanceID string, maxBatches int, progress func(Drained)) (Drained, error) {
	var d Drained
	size := p.BatchSize
	if size <= 0 || size > usagedata.MaxRecords {
		size = usagedata.MaxRecords
	}
	lease := p.Lease
	if lease <= 0 {
		lease = 2 * time.Minute
	}
	for maxBatches <= 0 || d.Batches < maxBatches {
		recs, err := p.Store.Claim(ctx, instanceID, size, lease)
		if err != nil {
			return d, err
		}
		if len(recs) == 0 {
			return d, nil
		}
		if err := p.push(ctx, recs, &d); err != nil {
			return d, err
		}
		d.Batches++
		if progress != nil {
			progress(d)
		}
	}
	n, err := p.Store.PendingCount(ctx, instanceID)
	if err != nil {
		return d, err
	}
	d.More = n > 0
	return d, nil
}

func (p *Pusher) push(ctx context.Context, recs []usagedata.Record, d *Drained) error {
	ex, err := p.Client.Push(ctx, recs)
	if err != nil {
		sns := make([]string, len(recs))
		for i, r := range recs {
			sns[i] = r.MeteringSN
		}
		// The outbound log and the release are written whatever the context says: they record what happened.
		bg := context.WithoutCancel(ctx)
		logErr := p.Store.LogFailedPush(bg, ex, err, p.Worker)
		relErr := p.Store.Release(bg, sns)
		var ue *usagedata.Error
		if !errors.As(err, &ue) {
			ue = &usagedata.Error{Code: "ERROR", Message: err.Error(), Retryable: true}
		}
		p.log().WarnContext(ctx, "usage push failed", "records", len(recs), "http_status", ue.HTTPStatus, "code", ue.Code,
			"reason", ue.Message, "retryable", ue.Retryable)
		return errors.Join(&FailedError{Err: ue, Retryable: ue.Retryable}, logErr, relErr)
	}
	verdicts := Judge(recs, ex.Refusals)
	if err := p.Store.Apply(context.WithoutCancel(ctx), ex, verdicts, p.Worker); err != nil {
		return fmt.Errorf("record the answers of a usage push of %d records: %w", len(recs), err)
	}
	var o Outcomes
	for _, v := range verdicts {
		o.Add(v.Outcome)
		if v.Outcome == Parked || v.Outcome == Refused {
			p.log().WarnContext(ctx, "usage record not charged", "instance_id", v.InstanceID, "metering_sn", v.MeteringSN,
				"code", v.Code, "reason", v.Message, "parked", v.Outcome == Parked)
		}
	}
	d.Accepted += o.Accepted
	d.Duplicates += o.Duplicates
	d.Parked += o.Parked
	d.Refused += o.Refused
	return nil
}

// Judge turns the marketplace's per-record answers into verdicts (docs/koogallery.md, "Usage push"): a record it
// did not refuse is charged; 005 was charged before; 001, 006, 009, 012 and 013 say the marketplace will not charge
// the instance as things are, so its push parks for a person; 007 (too old) can never be charged; 002, 003, 004,
// 010 and 011 mean kooflow sent a malformed record, which is a bug. An unknown code parks the instance: waiting
// loses nothing.
func Judge(recs []usagedata.Record, refusals []usagedata.Refusal) []Verdict {
	bySN := make(map[string]usagedata.Refusal, len(refusals))
	for _, r := range refusals {
		bySN[r.MeteringSN] = r
	}
	out := make([]Verdict, len(recs))
	for i, rec := range recs {
		v := Verdict{MeteringSN: rec.MeteringSN, InstanceID: rec.InstanceID, Outcome: Accepted}
		if r, ok := bySN[rec.MeteringSN]; ok {
			v.Code, v.Message = r.Code, r.Message
			switch r.Code {
			case "005":
				v.Outcome = Duplicate
			case "007":
				v.Outcome, v.Message = Refused, "record time expired: "+r.Message
			case "002", "003", "004", "010", "011":
				v.Outcome, v.Message = Refused, "kooflow sent a malformed record (a bug): "+r.Message
			default: // 001, 006, 009, 012, 013 and codes not documented
				v.Outcome = Parked
			}
		}
		out[i] = v
	}
	return out
}

func (p *Pusher) log() *slog.Logger {
	if p.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return p.Log
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func sortRows[T any](s []T, f func(a, b T) int) { slices.SortFunc(s, f) }

func cmpString(a, b string) int { return cmp.Compare(a, b) }
