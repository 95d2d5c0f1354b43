package store

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/kooflow/kooflow/internal/settlement"
)

// SettlementOrdersOfInstances reads every order line of the given instances as settlement sees them, in one
// statement: reconciliation explains many lines at once and must not read them instance by instance.
func SettlementOrdersOfInstances(ctx context.Context, tx pgx.Tx, instanceIDs []string) ([]settlement.OrderRow, error) {
	return settlementOrders(ctx, tx, `WHERE instance_id = ANY($1)`, instanceIDs)
}

// SettlementInstances reads the supervision state and dial-test flag of the given instances, by id.
func SettlementInstances(ctx context.Context, tx pgx.Tx, instanceIDs []string) (map[string]settlement.InstanceState, error) {
	rows, err := tx.Query(ctx, `SELECT instance_id, supervision, test_flag FROM instances WHERE instance_id = ANY($1)`, instanceIDs)
	if err != nil {
		return nil, fmt.Errorf("read instances: %w", err)
	}
	defer rows.Close()
	out := map[string]settlement.InstanceState{}
	for rows.Next() {
		var s settlement.InstanceState
		if err := rows.Scan(&s.ID, &s.Supervision, &s.TestFlag); err != nil {
			return nil, fmt.Errorf("read instance: %w", err)
		}
		out[s.ID] = s
	}
	return out, rows.Err()
}
