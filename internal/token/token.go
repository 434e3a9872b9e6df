// Package token signs and verifies the small payloads that the
// newsletter's links carry (unsubscribe, preferences, sign-up confirmation,
// forms), and any other a feature needs, with the secret (config secret or
// DIGEST_SECRET).
//
// A token is base64url (no padding) of a readable payload followed by a
// truncated HMAC-SHA256 of the purpose, the payload and, for bound tokens,
// the address the payload's id must belong to. Binding to the address
// means a token stops working if its id ever names another address (SQLite
// may reuse the id of a deleted row). Each purpose has its own label, so a
// token made for one never verifies for another. The bytes of a token are
// a promise: links already mailed must keep working, so neither the layout
// nor the labels of existing purposes may change.
package token

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/digest/digest/internal/subscriber"
)

// ErrInvalid is returned for a token that is malformed, whose signature
// does not match, or that was made for another purpose or address.
var ErrInvalid = errors.New("invalid token")

// ErrExpired is returned for a genuine token whose time is up (a
// confirmation link after 48 hours, a form left open too long).
var ErrExpired = errors.New("expired token")

// macSize is the length in bytes of the truncated HMAC-SHA256 in a token:
// 128 bits are far beyond what an online guesser can try.
const macSize = 16

// maxTokenLen bounds what is decoded at all: real tokens are under 100
// characters.
const maxTokenLen = 256

// Purpose labels what a token is for; it is signed with the payload, so
// that a token made for one purpose never verifies for another (an
// unsubscribe link cannot confirm a sign-up or open the preferences page).
// A new use takes a new label, such as "digest-verp-v1"; a label holds no
// NUL byte (it ends the label in the MAC).
type Purpose string

// The purposes of the readers' links. Anything else signed with the same
// secret (Message-IDs) uses yet another label.
const (
	tokenContext       Purpose = "digest-unsubscribe-v2"
	preferencesContext Purpose = "digest-preferences-v1"
	confirmContext     Purpose = "digest-confirm-v1"
	formContext        Purpose = "digest-form-v1"
)

// b64 is strict so that each token has exactly one spelling.
var b64 = base64.RawURLEncoding.Strict()

// Sign returns the token of payload for purpose, bound to bind (empty:
// unbound). The payload travels readable: it holds ids and times, never a
// secret or an address.
func Sign(secret []byte, purpose Purpose, payload, bind string) string {
	raw := make([]byte, 0, len(payload)+macSize)
	raw = append(raw, payload...)
	raw = append(raw, tokenMAC(secret, purpose, payload, bind)...)
	return b64.EncodeToString(raw)
}

// Sealed is a decoded token whose payload is not trusted until Verify
// succeeds. A bound token's payload names what to look up to find the
// address it must be bound to.
type Sealed struct {
	Payload string
	mac     []byte
}

// Open decodes tok without checking its signature; a token that is not
// the output of Sign gives ErrInvalid.
func Open(tok string) (Sealed, error) {
	payload, mac, err := unseal(tok)
	if err != nil {
		return Sealed{}, err
	}
	return Sealed{Payload: payload, mac: mac}, nil
}

// Verify checks the signature of s for purpose and bind under secret:
// ErrInvalid when it does not match.
func (s Sealed) Verify(secret []byte, purpose Purpose, bind string) error {
	if !hmac.Equal(s.mac, tokenMAC(secret, purpose, s.Payload, bind)) {
		return ErrInvalid
	}
	return nil
}

// unseal splits a token into its payload and MAC without checking the MAC.
func unseal(tok string) (payload string, mac []byte, err error) {
	if len(tok) > maxTokenLen {
		return "", nil, ErrInvalid
	}
	// The decoder skips CR and LF: refuse anything outside the alphabet,
	// so that each token has exactly one spelling.
	for i := 0; i < len(tok); i++ {
		c := tok[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return "", nil, ErrInvalid
		}
	}
	raw, err := b64.DecodeString(tok)
	if err != nil || len(raw) <= macSize {
		return "", nil, ErrInvalid
	}
	return string(raw[:len(raw)-macSize]), raw[len(raw)-macSize:], nil
}

func tokenMAC(secret []byte, context Purpose, payload, bind string) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte(context))
	h.Write([]byte{0})
	h.Write([]byte(payload))
	if bind != "" {
		h.Write([]byte{0})
		h.Write([]byte(bind))
	}
	return h.Sum(nil)[:macSize]
}

// bindKey is the form of an address a token is bound to: the address's
// identity, so that a token follows the subscriber, whatever the case.
func bindKey(email string) string { return subscriber.EmailKey(email) }

// ParseID reads a decimal id as written by strconv.FormatInt: no sign, no
// leading zeros, so that each id has one spelling.
func ParseID(s string) (int64, bool) {
	if s == "" || (len(s) > 1 && s[0] == '0') || s[0] == '+' || s[0] == '-' {
		return 0, false
	}
	id, err := strconv.ParseInt(s, 10, 64)
	return id, err == nil
}

// Unsubscribe returns the URL-safe unsubscribe token of one subscriber for one
// issue, bound to the subscriber's address: base64url (no padding) of
// "<subscriberID>.<issueID>" followed by a truncated HMAC-SHA256 of it and
// the address under secret. An empty issue id is the link mailed on request
// from the unsubscribe page. Bound, a link from an old message stops
// working if its id ever names another reader.
func Unsubscribe(secret []byte, subscriberID int64, issueID, email string) string {
	return Sign(secret, tokenContext, strconv.FormatInt(subscriberID, 10)+"."+issueID, bindKey(email))
}

// ParseUnsubscribe checks a token made by Unsubscribe with the same secret and returns
// what it names. lookup gives the address of the id in the token. Any
// malformed or forged token, or one whose id now names another address,
// gives ErrInvalid; a failing lookup gives its error.
func ParseUnsubscribe(secret []byte, tok string, lookup Lookup) (subscriberID int64, issueID string, err error) {
	sealed, err := Open(tok)
	if err != nil {
		return 0, "", err
	}
	idText, issueID, ok := strings.Cut(sealed.Payload, ".")
	if !ok {
		return 0, "", ErrInvalid
	}
	id, ok := ParseID(idText)
	if !ok {
		return 0, "", ErrInvalid
	}
	email, err := lookup(id)
	if err != nil {
		return 0, "", err
	}
	if err := sealed.Verify(secret, tokenContext, bindKey(email)); err != nil {
		return 0, "", err
	}
	return id, issueID, nil
}

// Lookup returns the address an id names, for checking a bound token; an
// error (such as "not found") makes the check fail with that error.
type Lookup func(id int64) (email string, err error)

// Preferences returns the token of a subscriber's preferences link,
// bound to the address. It does not expire: every message carries it.
func Preferences(secret []byte, subscriberID int64, email string) string {
	return Sign(secret, preferencesContext, strconv.FormatInt(subscriberID, 10), bindKey(email))
}

// ParsePreferences checks a token made by Preferences and returns
// the subscriber id. It gives ErrInvalid for a malformed or forged token,
// or one whose id now names another address, and lookup's error when that
// fails.
func ParsePreferences(secret []byte, tok string, lookup Lookup) (int64, error) {
	sealed, err := Open(tok)
	if err != nil {
		return 0, err
	}
	id, ok := ParseID(sealed.Payload)
	if !ok {
		return 0, ErrInvalid
	}
	// The MAC covers the address, so the lookup comes first; it only
	// reads, and a forged id costs one indexed read.
	email, err := lookup(id)
	if err != nil {
		return 0, err
	}
	if err := sealed.Verify(secret, preferencesContext, bindKey(email)); err != nil {
		return 0, err
	}
	return id, nil
}

// Confirm returns the token of a sign-up's confirmation link, bound
// to the address and valid until expires.
func Confirm(secret []byte, signupID int64, email string, expires time.Time) string {
	payload := strconv.FormatInt(signupID, 10) + "." + strconv.FormatInt(expires.Unix(), 10)
	return Sign(secret, confirmContext, payload, bindKey(email))
}

// ParseConfirm checks a token made by Confirm and returns the
// sign-up id. It gives ErrInvalid for a malformed or forged token (or one
// whose id now names another address), lookup's error when that fails, and
// ErrExpired for a genuine token past its time at now.
func ParseConfirm(secret []byte, tok string, now time.Time, lookup Lookup) (int64, error) {
	sealed, err := Open(tok)
	if err != nil {
		return 0, err
	}
	idText, expText, ok := strings.Cut(sealed.Payload, ".")
	if !ok {
		return 0, ErrInvalid
	}
	id, ok1 := ParseID(idText)
	exp, ok2 := ParseID(expText)
	if !ok1 || !ok2 {
		return 0, ErrInvalid
	}
	email, err := lookup(id)
	if err != nil {
		return 0, err
	}
	if err := sealed.Verify(secret, confirmContext, bindKey(email)); err != nil {
		return 0, err
	}
	if !now.Before(time.Unix(exp, 0)) {
		return 0, ErrExpired
	}
	return id, nil
}

// Form returns the hidden form field that a page's POST must carry,
// bound to scope (the page's own URL token) and stamped with now. With no
// cookie to tie a form to, it proves that the POST comes from a page this
// server rendered for that link, recently.
func Form(secret []byte, scope string, now time.Time) string {
	return Sign(secret, formContext, strconv.FormatInt(now.Unix(), 10), scope)
}

// CheckForm checks a token made by Form for scope: ErrInvalid
// when it is malformed, forged or for another scope, ErrExpired when
// it is older than maxAge (or from the future) at now.
func CheckForm(secret []byte, scope, tok string, now time.Time, maxAge time.Duration) error {
	sealed, err := Open(tok)
	if err != nil {
		return err
	}
	if err := sealed.Verify(secret, formContext, scope); err != nil {
		return err
	}
	issued, ok := ParseID(sealed.Payload)
	if !ok {
		return ErrInvalid
	}
	age := now.Sub(time.Unix(issued, 0))
	if age > maxAge || age < -time.Minute {
		return ErrExpired
	}
	return nil
}
