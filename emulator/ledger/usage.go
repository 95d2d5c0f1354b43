package ledger

import (
	"sort"
	"sync"
	"time"

	"github.com/shopspring/decimal"
)

// UsageCharge is one pay-per-use usage record the marketplace accepted and charged, keyed by its metering_sn.
type UsageCharge struct {
	MeteringSN        string          `json:"meteringSn"`
	InstanceID        string          `json:"instanceId"`
	BeginTime         time.Time       `json:"beginTime"`
	EndTime           time.Time       `json:"endTime"`
	Value             decimal.Decimal `json:"value"`
	RelatePkgInstance string          `json:"relatePkgInstance,omitempty"`
	ChargedAt         time.Time       `json:"chargedAt"`
}

// Usage is what the marketplace charged for pay-per-use usage: one charge per metering_sn, never two. It is safe
// for concurrent use.
type Usage struct {
	mu      sync.Mutex
	charges map[string]UsageCharge
}

// NewUsage returns an empty usage ledger.
func NewUsage() *Usage { return &Usage{charges: map[string]UsageCharge{}} }

// Charge records c unless its metering_sn was charged before; it reports whether it charged.
func (u *Usage) Charge(c UsageCharge) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	if _, dup := u.charges[c.MeteringSN]; dup {
		return false
	}
	u.charges[c.MeteringSN] = c
	return true
}

// Charged reports whether a metering_sn was charged.
func (u *Usage) Charged(meteringSN string) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	_, ok := u.charges[meteringSN]
	return ok
}

// UsageTotal is what was charged for one instance.
type UsageTotal struct {
	InstanceID string          `json:"instanceId"`
	Records    int             `json:"records"`
	Value      decimal.Decimal `json:"value"`
}

// Total is what was charged for an instance.
func (u *Usage) Total(instanceID string) UsageTotal {
	u.mu.Lock()
	defer u.mu.Unlock()
	t := UsageTotal{InstanceID: instanceID}
	for _, c := range u.charges {
		if c.InstanceID == instanceID {
			t.Records++
			t.Value = t.Value.Add(c.Value)
		}
	}
	return t
}

// Charges lists an instance's charges by begin time, then metering_sn.
func (u *Usage) Charges(instanceID string) []UsageCharge {
	u.mu.Lock()
	defer u.mu.Unlock()
	var out []UsageCharge
	for _, c := range u.charges {
		if c.InstanceID == instanceID {
			out = append(out, c)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].BeginTime.Equal(out[j].BeginTime) {
			return out[i].BeginTime.Before(out[j].BeginTime)
		}
		return out[i].MeteringSN < out[j].MeteringSN
	})
	return out
}

// All lists every charge, by metering_sn.
func (u *Usage) All() []UsageCharge {
	u.mu.Lock()
	defer u.mu.Unlock()
	out := make([]UsageCharge, 0, len(u.charges))
	for _, c := range u.charges {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].MeteringSN < out[j].MeteringSN })
	return out
}

// Sum is what was charged for usage over every instance.
func (u *Usage) Sum() UsageTotal {
	u.mu.Lock()
	defer u.mu.Unlock()
	var t UsageTotal
	for _, c := range u.charges {
		t.Records++
		t.Value = t.Value.Add(c.Value)
	}
	return t
}
