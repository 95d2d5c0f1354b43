package store

import (
	"context"
	"fmt"
	"time"
)

// The replay cache (koogallery_nonces): one row per nonce of an authenticated production-interface call. The
// primary key decides races between API processes, so a nonce is accepted once across all of them.

// ClaimNonce records nonce as seen at at and reports whether it was new (fresh); a nonce already recorded, by
// this process or another, is not fresh.
func (s *Store) ClaimNonce(ctx context.Context, nonce string, at time.Time) (fresh bool, err error) {
	tag, err := s.Pool.Exec(ctx,
		`INSERT INTO koogallery_nonces (nonce, seen_at) VALUES ($1, $2) ON CONFLICT (nonce) DO NOTHING`, nonce, at.UTC())
	if err != nil {
		return false, fmt.Errorf("record nonce: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

// PurgeNonces deletes the nonces seen before cutoff and returns how many it deleted.
func (s *Store) PurgeNonces(ctx context.Context, cutoff time.Time) (int64, error) {
	tag, err := s.Pool.Exec(ctx, `DELETE FROM koogallery_nonces WHERE seen_at < $1`, cutoff.UTC())
	if err != nil {
		return 0, fmt.Errorf("purge nonces: %w", err)
	}
	return tag.RowsAffected(), nil
}
