package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
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
