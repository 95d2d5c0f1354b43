// Package scenario drives customers through mixed KooGallery lifecycles against a running seller, playing the
// marketplace: it places orders in the emulated market, sends the signed production-interface calls with
// retries and faults, runs expiry, freeze and release on the emulator's scaled clock, plays the customer and the
// seller's operator on the seller's console (service supervision, refunds), keeps the marketplace's ledger, and
// at the end compares what the marketplace believes with the seller's read model, instance by instance.
package scenario

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/kooflow/kooflow/emulator/deliver"
	"github.com/kooflow/kooflow/emulator/market"
)

// Lifecycle paths a customer can take.
const (
	PathBuy              = "buy"               // buy a monthly or yearly subscription; time does the rest
	PathRenew            = "renew"             // renew before expiry
	PathFreezeRenew      = "freeze-renew"      // let it expire (FREEZE), renew during the retention period (refresh + UNFREEZE)
	PathExpireRelease    = "expire-release"    // let it expire and the retention period pass (FREEZE, then releaseInstance)
	PathTrialConvert     = "trial-convert"     // a trial converted to a formal order (refreshInstance TRIAL_TO_FORMAL)
	PathTrialExpire      = "trial-expire"      // a trial left to expire
	PathUpgrade          = "upgrade"           // upgrade the specification (CHANGE order, upgradeInstance)
	PathRenewChange      = "renew-change"      // renew with a change of specification (changeInstanceCheck, RENEWAL_CHANGE)
	PathUnsubscribe      = "unsubscribe"       // unsubscribe within the no-reason period (UNSUBSCRIBE order, releaseInstance)
	PathRenewalRefund    = "renewal-refund"    // renew, then refund the renewal before it takes effect
	PathSupervised       = "supervised"        // a supervised product through requirement, confirmation, delivery, acceptance
	PathSupervisedRefund = "supervised-refund" // a supervised product refunded inside the guarantee period
	PathUndeliverable    = "undeliverable"     // the seller cannot be reached for newInstance's whole window: refunded
	PathCredit           = "credit"            // bought with credit payment (信用支付), repaid (回款) two days later
	PathCreditUnpaid     = "credit-unpaid"     // bought with credit payment and not repaid while the run lasts
	PathDialTest         = "dial-test"         // the marketplace's dial test: a purchase whose calls carry testFlag "1"
)

// Paths lists every path, in report order.
func Paths() []string {
	return []string{PathBuy, PathRenew, PathFreezeRenew, PathExpireRelease, PathTrialConvert, PathTrialExpire,
		PathUpgrade, PathRenewChange, PathUnsubscribe, PathRenewalRefund, PathSupervised, PathSupervisedRefund,
		PathUndeliverable, PathCredit, PathCreditUnpaid, PathDialTest}
}

// DefaultMix weighs the paths for a run that names none.
func DefaultMix() map[string]float64 {
	return map[string]float64{
		PathBuy: 3, PathRenew: 2, PathFreezeRenew: 2, PathExpireRelease: 2, PathTrialConvert: 1, PathTrialExpire: 1,
		PathUpgrade: 1, PathRenewChange: 1, PathUnsubscribe: 1, PathRenewalRefund: 1, PathSupervised: 2,
		PathSupervisedRefund: 1, PathUndeliverable: 1, PathCredit: 1, PathCreditUnpaid: 1, PathDialTest: 1,
	}
}

// ParseMix reads "buy=3,renew=2,…" (weights) or "all" / "" for DefaultMix.
func ParseMix(s string) (map[string]float64, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "all" {
		return DefaultMix(), nil
	}
	known := map[string]bool{}
	for _, p := range Paths() {
		known[p] = true
	}
	out := map[string]float64{}
	for _, part := range strings.Split(s, ",") {
		name, w, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !known[name] {
			return nil, fmt.Errorf("mix: unknown path %q (known: %s)", name, strings.Join(Paths(), ", "))
		}
		weight := 1.0
		if ok {
			f, err := strconv.ParseFloat(w, 64)
			if err != nil || f < 0 {
				return nil, fmt.Errorf("mix: weight of %s must be a non-negative number, got %q", name, w)
			}
			weight = f
		}
		out[name] = weight
	}
	total := 0.0
	for _, w := range out {
		total += w
	}
	if total == 0 {
		return nil, fmt.Errorf("mix: all weights are zero")
	}
	return out, nil
}

// FormatMix writes a mix back in ParseMix's syntax, sorted.
func FormatMix(m map[string]float64) string {
	var parts []string
	for k, v := range m {
		parts = append(parts, k+"="+strconv.FormatFloat(v, 'g', -1, 64))
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

// Faults are every fault the scenario can turn on: the deliveries' and the order query's.
type Faults struct {
	Delivery deliver.Faults
	Query    market.QueryFaults
}

// AllFaults turns every fault on at rates a correct seller survives without business consequences: the
// seller's signature window decides how stale a delayed delivery is.
func AllFaults(sellerWindow time.Duration) Faults {
	return Faults{
		Delivery: deliver.Faults{Duplicate: 0.3, MaxCopies: 3, Reorder: 2 * time.Hour, Delay: 0.1,
			DelayBy: sellerWindow + 30*time.Second, DropResponse: 0.15},
		Query: market.QueryFaults{ErrorRate: 0.1, TimeoutRate: 0.03, Hang: 15 * time.Second},
	}
}

// ParseFaults reads "none", "all", or a list such as
// "dup=0.3,copies=3,reorder=2h,delay=0.1,delay-by=90s,drop=0.15,query-5xx=0.1,query-timeout=0.03,query-hang=15s".
// "all" may be followed by overrides: "all,drop=0.3".
func ParseFaults(s string, sellerWindow time.Duration) (Faults, error) {
	var f Faults
	for _, part := range strings.Split(strings.TrimSpace(s), ",") {
		part = strings.TrimSpace(part)
		if part == "" || part == "none" {
			continue
		}
		if part == "all" {
			f = AllFaults(sellerWindow)
			continue
		}
		name, v, ok := strings.Cut(part, "=")
		if !ok {
			return f, fmt.Errorf("faults: %q is not name=value", part)
		}
		rate := func() (float64, error) {
			x, err := strconv.ParseFloat(v, 64)
			if err != nil || x < 0 || x > 1 {
				return 0, fmt.Errorf("faults: %s must be a rate in [0, 1], got %q", name, v)
			}
			return x, nil
		}
		dur := func() (time.Duration, error) {
			d, err := time.ParseDuration(v)
			if err != nil || d < 0 {
				return 0, fmt.Errorf("faults: %s must be a duration such as 90s or 2h, got %q", name, v)
			}
			return d, nil
		}
		var err error
		switch name {
		case "dup":
			f.Delivery.Duplicate, err = rate()
			if f.Delivery.MaxCopies == 0 {
				f.Delivery.MaxCopies = 3
			}
		case "copies":
			n, e := strconv.Atoi(v)
			if e != nil || n < 0 || n > 3 {
				return f, fmt.Errorf("faults: copies must be 0 to 3, got %q", v)
			}
			f.Delivery.MaxCopies = n
		case "reorder":
			f.Delivery.Reorder, err = dur()
		case "delay":
			f.Delivery.Delay, err = rate()
			if f.Delivery.DelayBy == 0 {
				f.Delivery.DelayBy = sellerWindow + 30*time.Second
			}
		case "delay-by":
			f.Delivery.DelayBy, err = dur()
		case "drop":
			f.Delivery.DropResponse, err = rate()
		case "query-5xx":
			f.Query.ErrorRate, err = rate()
		case "query-timeout":
			f.Query.TimeoutRate, err = rate()
		case "query-hang":
			f.Query.Hang, err = dur()
		default:
			return f, fmt.Errorf("faults: unknown fault %q (dup, copies, reorder, delay, delay-by, drop, query-5xx, query-timeout, query-hang)", name)
		}
		if err != nil {
			return f, err
		}
	}
	if f.Query.ErrorRate+f.Query.TimeoutRate > 1 {
		return f, fmt.Errorf("faults: query-5xx and query-timeout add up to more than 1")
	}
	return f, nil
}

// String describes the faults for the report.
func (f Faults) String() string {
	d, q := f.Delivery, f.Query
	if d == (deliver.Faults{}) && q == (market.QueryFaults{}) {
		return "none"
	}
	return fmt.Sprintf("dup=%g(≤%d copies) reorder=%s delay=%g(by %s) drop=%g query-5xx=%g query-timeout=%g(hang %s)",
		d.Duplicate, d.MaxCopies, d.Reorder, d.Delay, d.DelayBy, d.DropResponse, q.ErrorRate, q.TimeoutRate, q.Hang)
}
