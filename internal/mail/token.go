package mail

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
)

// ErrBadToken is returned by ParseToken for a token that is malformed or
// whose signature does not match.
var ErrBadToken = errors.New("invalid unsubscribe token")

// macSize is the length in bytes of the truncated HMAC-SHA256 in a token:
// 128 bits are far beyond what an online guesser can try.
const macSize = 16

// tokenContext separates the MAC of unsubscribe tokens from any other use of
// the same secret (Message-ID hashes use another context).
const tokenContext = "digest-unsubscribe-v1\x00"

// Token returns the URL-safe unsubscribe token of one subscriber for one
// issue: base64url (no padding) of "<subscriberID>.<issueID>" followed by a
// truncated HMAC-SHA256 of it under secret.
func Token(secret []byte, subscriberID int64, issueID string) string {
	payload := strconv.FormatInt(subscriberID, 10) + "." + issueID
	raw := make([]byte, 0, len(payload)+macSize)
	raw = append(raw, payload...)
	raw = append(raw, tokenMAC(secret, payload)...)
	return base64.RawURLEncoding.EncodeToString(raw)
}

// ParseToken checks a token made by Token with the same secret and returns
// what it names. Any malformed or forged token gives ErrBadToken.
func ParseToken(secret []byte, tok string) (subscriberID int64, issueID string, err error) {
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || len(raw) <= macSize {
		return 0, "", ErrBadToken
	}
	payload, mac := string(raw[:len(raw)-macSize]), raw[len(raw)-macSize:]
	if !hmac.Equal(mac, tokenMAC(secret, payload)) {
		return 0, "", ErrBadToken
	}
	idText, issueID, ok := strings.Cut(payload, ".")
	if !ok {
		return 0, "", ErrBadToken
	}
	id, err := strconv.ParseInt(idText, 10, 64)
	if err != nil || id < 0 {
		return 0, "", ErrBadToken
	}
	return id, issueID, nil
}

func tokenMAC(secret []byte, payload string) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte(tokenContext))
	h.Write([]byte(payload))
	return h.Sum(nil)[:macSize]
}
