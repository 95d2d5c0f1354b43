package flow

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/kooflow/kooflow/catalog"
	"github.com/kooflow/kooflow/config"
	"github.com/kooflow/kooflow/settlement"
	"github.com/kooflow/kooflow/settlement/ledger"
)

// Deps are what settlement needs from the worker process.
type Deps struct {
	Config   config.Config
	Log      *slog.Logger
	Pool     *pgxpool.Pool
	Temporal client.Client
}

// LoadCatalog reads the product catalog settlement takes product types and rates from: KOOFLOW_CATALOG_FILE, or
// the embedded development catalog when it is not set.
func LoadCatalog(cfg config.Config) (*catalog.Catalog, error) {
	if cfg.CatalogFile != "" {
		return catalog.Load(cfg.CatalogFile)
	}
	return catalog.Parse(catalog.DevCatalog)
}

// SettingsFrom builds the close settings from the configuration.
func SettingsFrom(cfg config.Config) Settings {
	return Settings{
		Threshold:    cfg.SettlementThreshold,
		Days:         map[catalog.ProductType]int{catalog.JointOperation: cfg.SettlementDay, catalog.General: cfg.SettlementDayGeneral},
		CalendarFile: cfg.SettlementHolidays,
		BatchSize:    ledger.DefaultBatchSize,
	}
}

// RegisterWorkflows registers the settlement workflows under their stable names.
func RegisterWorkflows(r sdkworker.WorkflowRegistry) {
	r.RegisterWorkflowWithOptions(PeriodWorkflow, workflow.RegisterOptions{Name: PeriodWorkflowName})
	r.RegisterWorkflowWithOptions(TickWorkflow, workflow.RegisterOptions{Name: TickWorkflowName})
}

// Register wires settlement into a worker: its workflows, its activities and, when KOOFLOW_SETTLEMENT_SCHEDULE is
// on, the Temporal Schedule (created or updated idempotently at every start).
func Register(ctx context.Context, w sdkworker.Registry, d Deps) error {
	cat, err := LoadCatalog(d.Config)
	if err != nil {
		return fmt.Errorf("settlement: %w", err)
	}
	if d.Config.CatalogFile == "" {
		d.Log.Warn("settlement uses the embedded development catalog; set KOOFLOW_CATALOG_FILE for real products")
	}
	settings := SettingsFrom(d.Config)
	if _, err := settlement.LoadCalendar(settings.CalendarFile); err != nil {
		return fmt.Errorf("settlement: %w", err)
	}
	RegisterWorkflows(w)
	w.RegisterActivity(&Activities{Store: &ledger.Store{Pool: d.Pool}, Catalog: cat, Settings: settings, Log: d.Log})
	if d.Config.SettlementSchedule && d.Temporal != nil {
		cfg := ScheduleConfig{TaskQueue: d.Config.TaskQueue, Hour: d.Config.SettlementHour,
			Days: []int{d.Config.SettlementDay, d.Config.SettlementDayGeneral}}
		if err := EnsureSchedule(ctx, d.Temporal, cfg); err != nil {
			return fmt.Errorf("settlement: %w", err)
		}
		d.Log.Info("settlement schedule ensured", "schedule_id", ScheduleID, "hour", cfg.Hour, "days", cfg.Days,
			"time_zone", "Asia/Shanghai")
	}
	return nil
}
