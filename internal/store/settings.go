package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
)

// secretKey is the settings key of the generated signing secret.
const secretKey = "secret"

// Secret returns the 32-byte key kept in the database for signing
// unsubscribe tokens, creating it on first use. It lets a run with no
// configured secret still issue links that keep working across runs; a
// configured secret (config or DIGEST_SECRET) should take precedence.
func (s *Store) Secret(ctx context.Context) ([]byte, error) {
	var fresh [32]byte
	if _, err := rand.Read(fresh[:]); err != nil {
		return nil, fmt.Errorf("secret: %w", err)
	}
	var value string
	err := s.tx(ctx, func(tx *sql.Tx) error {
		// Insert-if-absent then read: whoever inserted first wins, even
		// across processes.
		if _, err := tx.ExecContext(ctx, s.q.insertSettingNew, secretKey, hex.EncodeToString(fresh[:])); err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, s.q.getSetting, secretKey).Scan(&value)
	})
	if err != nil {
		return nil, fmt.Errorf("secret: %w", err)
	}
	key, err := hex.DecodeString(value)
	if err != nil || len(key) < 16 {
		return nil, fmt.Errorf("secret: settings key %q holds a malformed value", secretKey)
	}
	return key, nil
}

// Setting returns the value kept under key, or "" when there is none.
// Keys are the callers' own ("subscribers_csv.problems"); "secret" is
// Secret's.
func (s *Store) Setting(ctx context.Context, key string) (string, error) {
	var value string
	err := s.db.QueryRowContext(ctx, s.q.getSetting, key).Scan(&value)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("setting %s: %w", key, err)
	}
	return value, nil
}

// PutSetting keeps value under key, replacing what was there. It refuses
// the key of the signing secret, which only Secret writes.
func (s *Store) PutSetting(ctx context.Context, key, value string) error {
	if key == secretKey {
		return fmt.Errorf("setting %s: kept by Secret", key)
	}
	if _, err := s.db.ExecContext(ctx, s.q.putSetting, key, value); err != nil {
		return fmt.Errorf("setting %s: %w", key, err)
	}
	return nil
}
