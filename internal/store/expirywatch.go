package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Expired is an instance the read model shows still usable after its expiry.
type Expired struct {
	InstanceID string
	ExpireTime time.Time
}

// ExpiredNotFrozen returns up to limit instances, oldest expiry first, that the read model shows ACTIVE or
// PROVISIONING with an expiry at or before before, and without an expiry alert raised since that expiry: the
// ones whose expiry safety net is due and not yet done. Instances in skip are left out. It reads
// instances_expire_idx.
func (s *Store) ExpiredNotFrozen(ctx context.Context, before time.Time, skip []string, limit int) ([]Expired, error) {
	rows, err := s.Pool.Query(ctx, `SELECT i.instance_id, i.expire_time FROM instances i
		WHERE i.lifecycle <> 'RELEASED' AND i.lifecycle IN ('ACTIVE', 'PROVISIONING') AND i.expire_time <= $1
			AND NOT (i.instance_id = ANY($2::text[]))
			AND NOT EXISTS (SELECT 1 FROM instance_alerts a
				WHERE a.instance_id = i.instance_id AND a.kind = 'expiry' AND a.raised_at >= i.expire_time)
		ORDER BY i.expire_time LIMIT $3`, before, skip, limit)
	if err != nil {
		return nil, fmt.Errorf("find expired instances not frozen: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[Expired])
	if err != nil {
		return nil, fmt.Errorf("find expired instances not frozen: %w", err)
	}
	return out, nil
}
