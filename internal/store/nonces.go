package store

import (
	"context"
	"fmt"
	"time"
)

// The replay cache (koogallery_nonces): one row per nonce of an authenticated production-interface call. The
// primary key decides races between API processes, so a nonce is accepted once across all of them.

// ClaimNonce records nonce as seen now and reports whether it was new (fresh); a nonce already recorded, by this
// process or another, is not fresh. "Now" is the database's clock, the one clock every API process shares, so a
// process whose clock is off can neither keep nonces too briefly nor purge another's too early. The commit does not
// wait for the disk: the call's message log entry, committed synchronously before the answer, makes it durable
// (see commit.go).
func (s *Store) ClaimNonce(ctx context.Context, nonce string) (fresh bool, err error) {
	tag, err := s.Pool.Exec(ctx, `INSERT INTO koogallery_nonces (nonce, seen_at) SELECT $1, now() FROM `+relaxedCommit+`
		ON CONFLICT (nonce) DO NOTHING`, nonce)
	if err != nil {
		return false, fmt.Errorf("record nonce: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

// PurgeNonces deletes the nonces seen more than olderThan ago by the database's clock and returns how many it
// deleted.
func (s *Store) PurgeNonces(ctx context.Context, olderThan time.Duration) (int64, error) {
	tag, err := s.Pool.Exec(ctx, `DELETE FROM koogallery_nonces WHERE seen_at < now() - make_interval(secs => $1)`,
		olderThan.Seconds())
	if err != nil {
		return 0, fmt.Errorf("purge nonces: %w", err)
	}
	return tag.RowsAffected(), nil
}
