package token_test

import (
	"errors"
	"testing"
	"time"

	"github.com/digest/digest/internal/token"
)

// Links already mailed keep working: these tokens were made before the
// tokens had their own package, and each must come out byte for byte
// the same and verify.
func TestFixedTokensKeepTheirBytes(t *testing.T) {
	t.Parallel()
	secret := []byte("fixed-secret")
	at := time.Unix(1796000000, 0)
	ada := func(id int64) (string, error) {
		if id == 42 {
			return "ada@example.org", nil
		}
		return "new@example.org", nil
	}
	tests := []struct {
		name, got, want string
		check           func(tok string) error
	}{
		{"unsubscribe", token.Unsubscribe(secret, 42, "2026-11-30", "Ada@Example.org"), "NDIuMjAyNi0xMS0zMI2FyCaM3V-DDwBZ19rajRg",
			func(tok string) error {
				id, iss, err := token.ParseUnsubscribe(secret, tok, ada)
				if err == nil && (id != 42 || iss != "2026-11-30") {
					err = errors.New("wrong payload")
				}
				return err
			}},
		{"unsubscribe on request", token.Unsubscribe(secret, 42, "", "ada@example.org"), "NDIuyqmHvylTiAGvplOSwotVCQ",
			func(tok string) error { _, _, err := token.ParseUnsubscribe(secret, tok, ada); return err }},
		{"preferences", token.Preferences(secret, 42, "Ada@Example.org"), "NDJJQq4RGIrYxUwsyvgFaXbd",
			func(tok string) error { _, err := token.ParsePreferences(secret, tok, ada); return err }},
		{"confirm", token.Confirm(secret, 7, "new@example.org", at), "Ny4xNzk2MDAwMDAw13QsHCmA_XV9TruPH2X5pw",
			func(tok string) error { _, err := token.ParseConfirm(secret, tok, at.Add(-time.Hour), ada); return err }},
		{"form", token.Form(secret, "scope-token", at), "MTc5NjAwMDAwMMdAd_oSIl3XpukaE-IcwsA",
			func(tok string) error { return token.CheckForm(secret, "scope-token", tok, at, time.Hour) }},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s: made %q, mailed links carry %q", tt.name, tt.got, tt.want)
		}
		if err := tt.check(tt.want); err != nil {
			t.Errorf("%s: the mailed token no longer verifies: %v", tt.name, err)
		}
	}
}

// Sign and Open are the general form: a payload signed for one purpose and
// binding verifies for exactly that purpose and binding.
func TestSignOpen(t *testing.T) {
	t.Parallel()
	secret := []byte("k3y")
	const verp token.Purpose = "digest-test-v1"
	tok := token.Sign(secret, verp, "17.2026-11-30", "ada@example.org")
	s, err := token.Open(tok)
	if err != nil || s.Payload != "17.2026-11-30" {
		t.Fatalf("Open = %+v, %v", s, err)
	}
	if err := s.Verify(secret, verp, "ada@example.org"); err != nil {
		t.Errorf("Verify: %v", err)
	}
	for name, err := range map[string]error{
		"other purpose": s.Verify(secret, "digest-other-v1", "ada@example.org"),
		"other binding": s.Verify(secret, verp, "bob@example.org"),
		"unbound":       s.Verify(secret, verp, ""),
		"other secret":  s.Verify([]byte("other"), verp, "ada@example.org"),
	} {
		if !errors.Is(err, token.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
	if _, err := token.Open(tok + "\n"); !errors.Is(err, token.ErrInvalid) {
		t.Errorf("Open of a token with a newline: %v", err)
	}
}
