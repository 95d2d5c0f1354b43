package market

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/kooflow/kooflow/emulator/ledger"
)

// UsageFaults make the usage push misbehave: whole requests failing at a rate or a given number of times, and
// per-record codes forced for chosen instances (001 instance does not exist, 013 status abnormal, ...), as a
// marketplace that has lost or frozen an instance answers.
type UsageFaults struct {
	ErrorRate   float64       `json:"errorRate"`   // answer 500 MKT.0999
	TimeoutRate float64       `json:"timeoutRate"` // hold the request for Hang (or until the caller gives up), then 504
	Hang        time.Duration `json:"hang"`        // 30 s if zero
	// FailNext answers the next FailNext authenticated pushes 500 MKT.0999, before the rates apply.
	FailNext int `json:"failNext"`
	// RecordCodes refuses every record of an instance with the given per-record code.
	RecordCodes map[string]string `json:"recordCodes,omitempty"`
}

// SetUsageFaults changes the usage push's faults; the zero value turns them off.
func (m *Market) SetUsageFaults(f UsageFaults) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.usageF = f
}

// Charged is what the marketplace charged an instance for usage.
func (m *Market) Charged(instanceID string) ledger.UsageTotal { return m.charges.Total(instanceID) }

// UsageLedger is the market's ledger of charged usage.
func (m *Market) UsageLedger() *ledger.Usage { return m.charges }

// injectUsageFault applies the usage faults; it reports whether it answered.
func (m *Market) injectUsageFault(w http.ResponseWriter, r *http.Request) bool {
	m.mu.Lock()
	f := m.usageF
	if m.usageF.FailNext > 0 {
		m.usageF.FailNext--
	}
	x := m.rng.Float64()
	m.mu.Unlock()
	switch {
	case f.FailNext > 0 || x < f.ErrorRate:
		m.log.Warn("usage push: injected failure")
		writeJSON(w, http.StatusInternalServerError, usageResponse{ErrorCode: "MKT.0999", ErrorMsg: "System internal error."})
		return true
	case x < f.ErrorRate+f.TimeoutRate:
		hang := f.Hang
		if hang == 0 {
			hang = 30 * time.Second
		}
		t := time.NewTimer(hang)
		defer t.Stop()
		select {
		case <-r.Context().Done():
		case <-t.C:
		}
		writeJSON(w, http.StatusGatewayTimeout, usageResponse{ErrorCode: "MKT.0999", ErrorMsg: "System internal error: timed out."})
		return true
	}
	return false
}

// UsageControl is what a scenario needs of a market's usage side, in-process or remote.
type UsageControl interface {
	SetUsageFaults(ctx context.Context, f UsageFaults) error
	Charged(ctx context.Context, instanceID string) (ledger.UsageTotal, error)
	Pushed(ctx context.Context, instanceID string) (ledger.UsageTotal, error)
}

// LocalUsage adapts an in-process Market to UsageControl.
type LocalUsage struct{ M *Market }

func (l LocalUsage) SetUsageFaults(_ context.Context, f UsageFaults) error {
	l.M.SetUsageFaults(f)
	return nil
}

func (l LocalUsage) Charged(_ context.Context, instanceID string) (ledger.UsageTotal, error) {
	return l.M.Charged(instanceID), nil
}

func (l LocalUsage) Pushed(_ context.Context, instanceID string) (ledger.UsageTotal, error) {
	return l.M.Pushed(instanceID), nil
}

// Pushed asks a remote market what the seller pushed for an instance.
func (c Remote) Pushed(ctx context.Context, instanceID string) (ledger.UsageTotal, error) {
	var t ledger.UsageTotal
	err := c.do(ctx, http.MethodGet, ControlPrefix+"usage-pushed?instanceId="+url.QueryEscape(instanceID), nil, &t)
	return t, err
}

// SetUsageFaults sets a remote market's usage faults.
func (c Remote) SetUsageFaults(ctx context.Context, f UsageFaults) error {
	return c.do(ctx, http.MethodPut, ControlPrefix+"usage-faults", f, nil)
}

// Charged asks a remote market what it charged an instance.
func (c Remote) Charged(ctx context.Context, instanceID string) (ledger.UsageTotal, error) {
	var t ledger.UsageTotal
	err := c.do(ctx, http.MethodGet, ControlPrefix+"usage-charged?instanceId="+url.QueryEscape(instanceID), nil, &t)
	return t, err
}

// usageControlRoutes adds the usage control endpoints to the control API.
func (m *Market) usageControlRoutes(mux *http.ServeMux, decode func(http.ResponseWriter, *http.Request, []byte, any) bool) {
	mux.HandleFunc("PUT "+ControlPrefix+"usage-faults", func(w http.ResponseWriter, r *http.Request) {
		var f UsageFaults
		if !decode(w, r, r.Context().Value(bodyKey{}).([]byte), &f) {
			return
		}
		if f.ErrorRate < 0 || f.TimeoutRate < 0 || f.ErrorRate+f.TimeoutRate > 1 || f.FailNext < 0 {
			writeJSON(w, http.StatusBadRequest, controlError{"rates must be non-negative and sum to at most 1; failNext ≥ 0"})
			return
		}
		m.SetUsageFaults(f)
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET "+ControlPrefix+"usage-charged", func(w http.ResponseWriter, r *http.Request) {
		id := r.URL.Query().Get("instanceId")
		if id == "" {
			writeJSON(w, http.StatusBadRequest, controlError{"instanceId is required"})
			return
		}
		writeJSON(w, http.StatusOK, m.Charged(id))
	})
	mux.HandleFunc("GET "+ControlPrefix+"usage-pushed", func(w http.ResponseWriter, r *http.Request) {
		id := r.URL.Query().Get("instanceId")
		if id == "" {
			writeJSON(w, http.StatusBadRequest, controlError{"instanceId is required"})
			return
		}
		writeJSON(w, http.StatusOK, m.Pushed(id))
	})
}

var _ UsageControl = LocalUsage{}
var _ UsageControl = Remote{}

// receivedRecord is a pushed record as first received, charged or not.
type receivedRecord struct {
	instanceID string
	value      decimal.Decimal
}

// noteReceived keeps the first push of each metering_sn whose value reads as a number. The caller holds m.mu.
func (m *Market) noteReceived(rec usageRecord) {
	if rec.MeteringSN == "" {
		return
	}
	if m.received == nil {
		m.received = map[string]receivedRecord{}
	}
	if _, seen := m.received[rec.MeteringSN]; seen {
		return
	}
	v, err := decimal.NewFromString(strings.TrimSpace(fmt.Sprint(rec.UsageValue)))
	if err != nil {
		return
	}
	m.received[rec.MeteringSN] = receivedRecord{instanceID: rec.InstanceID, value: v}
}

// Pushed is what the seller pushed for an instance: every distinct metering_sn received, whether the marketplace
// charged it or refused it.
func (m *Market) Pushed(instanceID string) ledger.UsageTotal {
	m.mu.RLock()
	defer m.mu.RUnlock()
	t := ledger.UsageTotal{InstanceID: instanceID}
	for _, r := range m.received {
		if r.instanceID == instanceID {
			t.Records++
			t.Value = t.Value.Add(r.value)
		}
	}
	return t
}
