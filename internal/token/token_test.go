package token

import (
	"encoding/base64"
	"errors"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
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
			tok := Unsubscribe(secret, tt.id, tt.issue, "Reader@Example.org")
			if !urlSafe.MatchString(tok) {
				t.Errorf("token %q is not URL-safe", tok)
			}
			id, issue, err := ParseUnsubscribe(secret, tok, func(int64) (string, error) { return "reader@example.org", nil })
			if err != nil || id != tt.id || issue != tt.issue {
				t.Errorf("ParseUnsubscribe = %d, %q, %v; want %d, %q", id, issue, err, tt.id, tt.issue)
			}
		})
	}
}

// reader12 is the lookup of the tamper tests: id 12 is reader@example.org,
// any other id another reader.
func reader12(id int64) (string, error) {
	if id == 12 {
		return "reader@example.org", nil
	}
	return "other" + strconv.FormatInt(id, 10) + "@example.org", nil
}

func TestTokenTamper(t *testing.T) {
	secret := []byte("k3y")
	tok := Unsubscribe(secret, 12, "2026-05-04", "reader@example.org")
	raw, _ := base64.RawURLEncoding.DecodeString(tok)
	flipped := append([]byte(nil), raw...)
	flipped[0] ^= 1 // "12" becomes "02"... any payload change must fail
	forged := append([]byte("13.2026-05-04"), raw[len(raw)-macSize:]...)
	tests := map[string]string{
		"other secret": Unsubscribe([]byte("other"), 12, "2026-05-04", "reader@example.org"),
		"other reader": Unsubscribe(secret, 12, "2026-05-04", "someone@example.org"),
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
			if _, _, err := ParseUnsubscribe(secret, bad, reader12); !errors.Is(err, ErrInvalid) {
				t.Errorf("ParseUnsubscribe(%q) err = %v, want ErrInvalid", bad, err)
			}
		})
	}
}

func FuzzParseUnsubscribe(f *testing.F) {
	secret := []byte("k3y")
	f.Add(Unsubscribe(secret, 12, "2026-05-04", "reader@example.org"))
	f.Add(Unsubscribe(secret, 0, "", "x@example.org"))
	f.Add("")
	f.Fuzz(func(t *testing.T, tok string) {
		id, issue, err := ParseUnsubscribe(secret, tok, reader12)
		if err == nil && Unsubscribe(secret, id, issue, "reader@example.org") != tok {
			t.Errorf("accepted %q, which Unsubscribe would not produce", tok)
		}
	})
}

// addresses is a lookup over a fixed table, as the store would answer.
func addresses(m map[int64]string) Lookup {
	return func(id int64) (string, error) {
		if e, ok := m[id]; ok {
			return e, nil
		}
		return "", errNotFound
	}
}

var errNotFound = errors.New("not found")

func TestBoundTokens(t *testing.T) {
	secret := []byte("k3y")
	now := time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)
	lookup := addresses(map[int64]string{7: "Ann@example.org", 8: "bob@example.org"})

	pref := Preferences(secret, 7, "ann@EXAMPLE.org")
	if id, err := ParsePreferences(secret, pref, lookup); err != nil || id != 7 {
		t.Fatalf("ParsePreferences = %d, %v", id, err)
	}
	conf := Confirm(secret, 8, "bob@example.org", now.Add(48*time.Hour))
	if id, err := ParseConfirm(secret, conf, now, lookup); err != nil || id != 8 {
		t.Fatalf("ParseConfirm = %d, %v", id, err)
	}
	if _, err := ParseConfirm(secret, conf, now.Add(48*time.Hour), lookup); !errors.Is(err, ErrExpired) {
		t.Errorf("confirm token at its expiry: %v, want ErrExpired", err)
	}
	form := Form(secret, pref, now)
	if err := CheckForm(secret, pref, form, now.Add(time.Hour), 24*time.Hour); err != nil {
		t.Errorf("CheckForm: %v", err)
	}
	if err := CheckForm(secret, pref, form, now.Add(25*time.Hour), 24*time.Hour); !errors.Is(err, ErrExpired) {
		t.Errorf("old form token: %v, want ErrExpired", err)
	}

	unsub := Unsubscribe(secret, 7, "2026-11-30", "ann@example.org")
	// The id of an unsubscribe token in a preferences token's place.
	unsubAsID := b64.EncodeToString(append([]byte("7"), tokenMAC(secret, tokenContext, "7", "")...))
	// A sign-up id that now names another address.
	moved := Confirm(secret, 7, "someone-else@example.org", now.Add(time.Hour))
	expiredForged := func() string {
		raw, _ := b64.DecodeString(conf)
		payload := []byte("8." + strconv.FormatInt(now.Add(1000*time.Hour).Unix(), 10))
		return b64.EncodeToString(append(payload, raw[len(raw)-macSize:]...))
	}()
	tests := []struct {
		name  string
		parse func() error
		want  error
	}{
		{"unsubscribe token as preferences", func() error { _, err := ParsePreferences(secret, unsub, lookup); return err }, ErrInvalid},
		{"unsubscribe MAC over a bare id as preferences", func() error { _, err := ParsePreferences(secret, unsubAsID, lookup); return err }, ErrInvalid},
		{"preferences token as confirm", func() error { _, err := ParseConfirm(secret, pref, now, lookup); return err }, ErrInvalid},
		{"confirm token as preferences", func() error { _, err := ParsePreferences(secret, conf, lookup); return err }, ErrInvalid},
		{"unsubscribe token as confirm", func() error { _, err := ParseConfirm(secret, unsub, now, lookup); return err }, ErrInvalid},
		{"preferences token as unsubscribe", func() error { _, _, err := ParseUnsubscribe(secret, pref, lookup); return err }, ErrInvalid},
		{"confirm token as unsubscribe", func() error { _, _, err := ParseUnsubscribe(secret, conf, lookup); return err }, ErrInvalid},
		{"form token as preferences", func() error {
			anyID := func(int64) (string, error) { return "ann@example.org", nil }
			_, err := ParsePreferences(secret, form, anyID)
			return err
		}, ErrInvalid},
		{"preferences token as form", func() error { return CheckForm(secret, pref, pref, now, time.Hour) }, ErrInvalid},
		{"form token of another page", func() error { return CheckForm(secret, conf, form, now, time.Hour) }, ErrInvalid},
		{"id moved to another address", func() error { _, err := ParseConfirm(secret, moved, now, lookup); return err }, ErrInvalid},
		{"extended expiry", func() error { _, err := ParseConfirm(secret, expiredForged, now, lookup); return err }, ErrInvalid},
		{"other secret", func() error { _, err := ParsePreferences([]byte("other"), pref, lookup); return err }, ErrInvalid},
		{"truncated", func() error { _, err := ParsePreferences(secret, pref[:len(pref)-1], lookup); return err }, ErrInvalid},
		{"too long", func() error { _, err := ParsePreferences(secret, strings.Repeat("A", 300), lookup); return err }, ErrInvalid},
		{"unknown id", func() error {
			_, err := ParsePreferences(secret, Preferences(secret, 99, "x@example.org"), lookup)
			return err
		}, errNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.parse(); !errors.Is(err, tt.want) {
				t.Errorf("got %v, want %v", err, tt.want)
			}
		})
	}
}

// FuzzBoundTokens checks that the parsers of the bound tokens accept only
// what their makers produce, and never for another purpose.
func FuzzBoundTokens(f *testing.F) {
	secret := []byte("k3y")
	now := time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)
	lookup := addresses(map[int64]string{1: "a@example.org", 2: "b@example.org"})
	f.Add(Preferences(secret, 1, "a@example.org"))
	f.Add(Confirm(secret, 2, "b@example.org", now.Add(time.Hour)))
	f.Add(Form(secret, "scope", now))
	f.Add(Unsubscribe(secret, 1, "", "a@example.org"))
	f.Fuzz(func(t *testing.T, tok string) {
		id, perr := ParsePreferences(secret, tok, lookup)
		if perr == nil {
			e, _ := lookup(id)
			if Preferences(secret, id, e) != tok {
				t.Fatalf("preferences: accepted %q, which Preferences would not produce", tok)
			}
		}
		cid, cerr := ParseConfirm(secret, tok, now, lookup)
		if cerr == nil {
			payload, _, _ := unseal(tok)
			_, exp, _ := strings.Cut(payload, ".")
			sec, _ := strconv.ParseInt(exp, 10, 64)
			e, _ := lookup(cid)
			if Confirm(secret, cid, e, time.Unix(sec, 0)) != tok {
				t.Fatalf("confirm: accepted %q, which Confirm would not produce", tok)
			}
		}
		ferr := CheckForm(secret, "scope", tok, now, time.Hour)
		_, _, uerr := ParseUnsubscribe(secret, tok, lookup)
		accepted := 0
		for _, err := range []error{perr, cerr, ferr, uerr} {
			if err == nil {
				accepted++
			}
		}
		if accepted > 1 {
			t.Fatalf("%q is accepted for %d purposes", tok, accepted)
		}
	})
}
