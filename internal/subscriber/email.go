package subscriber

import (
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"unicode"
)

// NormalizeEmail trims s and checks that it is one bare address (local@domain,
// no display name, angle brackets, comment or whitespace). It returns the
// address as given, case preserved: the local part is case-sensitive in
// principle, so matching uses [EmailKey] instead of rewriting what was typed.
func NormalizeEmail(s string) (string, error) {
	addr := strings.TrimSpace(s)
	if addr == "" {
		return "", errors.New("empty email address")
	}
	if strings.IndexFunc(addr, unicode.IsSpace) >= 0 {
		return "", fmt.Errorf("email address %q: contains whitespace", addr)
	}
	if !strings.Contains(addr, "@") {
		return "", fmt.Errorf("email address %q: missing @", addr)
	}
	parsed, err := mail.ParseAddress(addr)
	if err != nil {
		return "", fmt.Errorf("email address %q: %w", addr, err)
	}
	if parsed.Name != "" || parsed.Address != addr {
		return "", fmt.Errorf("email address %q: want a bare address such as user@example.org", addr)
	}
	return addr, nil
}

// EmailKey is the case-insensitive identity of an address: two addresses with
// the same key are the same subscriber.
func EmailKey(email string) string {
	return strings.ToLower(strings.TrimSpace(email))
}
