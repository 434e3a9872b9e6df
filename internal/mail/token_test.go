package mail

import (
	"encoding/base64"
	"errors"
	"regexp"
	"testing"
)

func TestTokenRoundTrip(t *testing.T) {
	secret := []byte("k3y")
	tests := []struct {
		id    int64
		issue string
	}{
		{1, "2026-05-04"},
		{0, "test"},
		{9223372036854775807, "a.b.c"},
		{42, ""},
		{7, "été/2026 ?&="},
	}
	urlSafe := regexp.MustCompile(`^[A-Za-z0-9_-]+$`)
	for _, tt := range tests {
		t.Run(tt.issue, func(t *testing.T) {
			tok := Token(secret, tt.id, tt.issue)
			if !urlSafe.MatchString(tok) {
				t.Errorf("token %q is not URL-safe", tok)
			}
			id, issue, err := ParseToken(secret, tok)
			if err != nil || id != tt.id || issue != tt.issue {
				t.Errorf("ParseToken = %d, %q, %v; want %d, %q", id, issue, err, tt.id, tt.issue)
			}
		})
	}
}

func TestTokenTamper(t *testing.T) {
	secret := []byte("k3y")
	tok := Token(secret, 12, "2026-05-04")
	raw, _ := base64.RawURLEncoding.DecodeString(tok)
	flipped := append([]byte(nil), raw...)
	flipped[0] ^= 1 // "12" becomes "02"... any payload change must fail
	forged := append([]byte("13.2026-05-04"), raw[len(raw)-macSize:]...)
	tests := map[string]string{
		"other secret": Token([]byte("other"), 12, "2026-05-04"),
		"flipped bit":  base64.RawURLEncoding.EncodeToString(flipped),
		"forged id":    base64.RawURLEncoding.EncodeToString(forged),
		"truncated":    tok[:len(tok)-2],
		"empty":        "",
		"not base64":   "!!!" + tok,
		"mac only":     base64.RawURLEncoding.EncodeToString(raw[len(raw)-macSize:]),
		"padded":       tok + "==",
	}
	for name, bad := range tests {
		t.Run(name, func(t *testing.T) {
			if _, _, err := ParseToken(secret, bad); !errors.Is(err, ErrBadToken) {
				t.Errorf("ParseToken(%q) err = %v, want ErrBadToken", bad, err)
			}
		})
	}
}

func FuzzParseToken(f *testing.F) {
	secret := []byte("k3y")
	f.Add(Token(secret, 5, "2026-05-04"))
	f.Add("")
	f.Fuzz(func(t *testing.T, tok string) {
		id, issue, err := ParseToken(secret, tok)
		if err == nil && Token(secret, id, issue) != tok {
			t.Errorf("accepted %q, which Token would not produce", tok)
		}
	})
}
