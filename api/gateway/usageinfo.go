package gateway

import (
	"context"
	"encoding/json"
	"time"

	"github.com/kooflow/kooflow/internal/catalog"
	"github.com/kooflow/kooflow/internal/koogallery"
)

// addUsage fills the usageInfo of the pay-per-use instances and packages among views, with one more query for all
// of them, made only when there are any (queryInstance of 100 ids stays at most two queries). queryInstance is
// mandatory for these products and reports live usage (docs/koogallery.md, "queryInstance"): the cumulative usage
// taken so far, up to the end of the latest usage counted. An instance with no usage yet reports 0 as of now.
func (b *TemporalBackend) addUsage(ctx context.Context, views []InstanceView) error {
	var ids []string
	for _, v := range views {
		if v.chargingMode == catalog.ChargingOnDemand || v.chargingMode == catalog.ChargingOnDemandPkg {
			ids = append(ids, v.InstanceID)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	totals, err := b.Store.UsageTotals(ctx, ids)
	if err != nil {
		return err
	}
	if len(totals) == 0 {
		return nil
	}
	at := make(map[string]int, len(views))
	for i, v := range views {
		at[v.InstanceID] = i
	}
	now := b.now()
	for _, t := range totals {
		i, ok := at[t.InstanceID]
		if !ok {
			continue
		}
		through := now
		if t.Through != nil {
			through = *t.Through
		}
		views[i].Usage = &koogallery.UsageInfo{RelatedInstanceID: t.Related, UsageValue: json.Number(t.Value.String()),
			StatisticalTime: koogallery.FormatStatisticalTime(through)}
	}
	return nil
}

func (b *TemporalBackend) now() time.Time {
	if b.Now != nil {
		return b.Now()
	}
	return time.Now()
}
