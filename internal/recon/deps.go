package recon

import (
	"fmt"

	"github.com/kooflow/kooflow/internal/app"
	"github.com/kooflow/kooflow/internal/catalog"
	"github.com/kooflow/kooflow/internal/settlement"
	"github.com/kooflow/kooflow/internal/store"
)

// NewStore builds the store a process uses: the deployment's holiday calendar and bill days, alerts as system
// alerts that the alert pusher delivers.
func NewStore(d app.Deps) (*Store, error) {
	cal, err := settlement.LoadCalendar(d.Config.SettlementHolidays)
	if err != nil {
		return nil, fmt.Errorf("reconciliation calendar: %w", err)
	}
	return &Store{Pool: d.Pool, Calendar: cal, Alerts: SystemAlerter{Store: &store.Store{Pool: d.Pool}, Now: d.Clock()},
		BillDay: map[catalog.ProductType]int{catalog.JointOperation: d.Config.SettlementDay, catalog.General: d.Config.SettlementDayGeneral}}, nil
}
