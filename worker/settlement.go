package worker

import (
	"fmt"

	"github.com/kooflow/kooflow/activities"
	"github.com/kooflow/kooflow/internal/app"
	"github.com/kooflow/kooflow/internal/catalog"
	"github.com/kooflow/kooflow/internal/config"
	"github.com/kooflow/kooflow/internal/ledger"
	"github.com/kooflow/kooflow/internal/settlement"
)

// SettlementSettings builds the close settings from the configuration.
func SettlementSettings(cfg config.Config) activities.SettlementSettings {
	return activities.SettlementSettings{
		Threshold:    cfg.SettlementThreshold,
		Days:         map[catalog.ProductType]int{catalog.JointOperation: cfg.SettlementDay, catalog.General: cfg.SettlementDayGeneral},
		CalendarFile: cfg.SettlementHolidays,
		BatchSize:    ledger.DefaultBatchSize,
	}
}

// settlementActivities builds settlement's activities; the holiday calendar is read once here so that a broken
// calendar file stops the worker at start rather than at the first tick.
func settlementActivities(d app.Deps) (*activities.Settlement, error) {
	settings := SettlementSettings(d.Config)
	if _, err := settlement.LoadCalendar(settings.CalendarFile); err != nil {
		return nil, fmt.Errorf("settlement: %w", err)
	}
	return &activities.Settlement{Store: &ledger.Store{Pool: d.Pool}, Catalog: d.Catalog, Settings: settings, Log: d.Log,
		Metrics: d.WorkerMetrics, Now: d.Now}, nil
}
