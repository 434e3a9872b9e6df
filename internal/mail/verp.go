package mail

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	"github.com/digest/digest/internal/token"
)

// A VERP token is an unsubscribe token (see token.Unsubscribe) made with a key derived
// from the secret, so that it names the same (subscriber, issue), bound to
// the address, but never verifies as an unsubscribe link nor the reverse.
// It is made of [A-Za-z0-9_-], safe in an address's local part: about 40
// characters for a seven-digit id and a dated issue.

// VERPToken returns the token carried in the envelope sender
// bounces+TOKEN@domain of the message of issueID to one subscriber.
func VERPToken(secret []byte, subscriberID int64, issueID, email string) string {
	return token.Unsubscribe(verpKey(secret), subscriberID, issueID, email)
}

// ParseVERPToken checks a token made by VERPToken and returns what it
// names; errors as token.ParseUnsubscribe.
func ParseVERPToken(secret []byte, tok string, lookup token.Lookup) (subscriberID int64, issueID string, err error) {
	return token.ParseUnsubscribe(verpKey(secret), tok, lookup)
}

func verpKey(secret []byte) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte("digest-verp-v1\x00"))
	return h.Sum(nil)
}

// VERPAddress puts token into the local part of base (bounces@d gives
// bounces+TOKEN@d). base must be a bare address.
func VERPAddress(base, token string) string {
	at := strings.LastIndexByte(base, '@')
	if at < 0 {
		return base
	}
	return base[:at] + "+" + token + base[at:]
}

// ParseMessageID checks a Message-ID (with or without angle brackets) made
// by Composer.MessageID with the same secret and returns the issue and the
// subscriber it names. Only issue ids made of [A-Za-z0-9_-] (dated ones)
// can be read back. Anything else gives token.ErrInvalid.
func ParseMessageID(secret []byte, id string) (issueID string, subscriberID int64, err error) {
	id = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(id), "<"), ">")
	left, _, ok := strings.Cut(id, "@")
	if !ok || len(left) > maxMessageIDLen {
		return "", 0, token.ErrInvalid
	}
	parts := strings.Split(left, ".")
	if len(parts) != 3 {
		return "", 0, token.ErrInvalid
	}
	sub, ok := token.ParseID(parts[1])
	if !ok || atomText(parts[0]) != parts[0] {
		return "", 0, token.ErrInvalid
	}
	mac, err := hex.DecodeString(parts[2])
	if err != nil || len(mac) != 8 {
		return "", 0, token.ErrInvalid
	}
	if !hmac.Equal(mac, messageIDMAC(secret, parts[0], sub)) {
		return "", 0, token.ErrInvalid
	}
	return parts[0], sub, nil
}

// maxMessageIDLen bounds the local part ParseMessageID reads.
const maxMessageIDLen = 256

// messageIDMAC is the 8-byte MAC in a Message-ID.
func messageIDMAC(secret []byte, issueID string, subscriberID int64) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte("digest-message-id-v1\x00"))
	h.Write([]byte(issueID))
	h.Write([]byte{0})
	h.Write([]byte(strconv.FormatInt(subscriberID, 10)))
	return h.Sum(nil)[:8]
}

// FeedbackID is the Feedback-ID header value (Gmail's feedback loop):
// issue, list and sender, colon-separated, the sender (the From domain)
// last as Gmail asks.
func (c *Composer) FeedbackID(issueID string) string {
	return fmt.Sprintf("%s:%s:%s", atomText(issueID), slugify(c.listName), c.domain)
}
