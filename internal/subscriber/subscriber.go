// Package subscriber defines a subscriber, the checks an address and a
// topic list must pass, and reads subscriber lists from CSV.
package subscriber

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
)

// Status of a subscriber.
const (
	StatusActive       = "active"
	StatusUnsubscribed = "unsubscribed"
	StatusBounced      = "bounced"
	// StatusComplained is a reader who marked an issue as spam: never
	// mailed again, and no import or sync makes them active.
	StatusComplained = "complained"
	// StatusPending is a sign-up from the web form whose address is not
	// confirmed yet. Such sign-ups are kept apart from subscribers (they
	// are never sent an issue); lists show them with this status.
	StatusPending = "pending"
)

// Statuses are the statuses a listed subscriber can have, in the order
// they are explained to users.
var Statuses = []string{StatusActive, StatusPending, StatusUnsubscribed, StatusBounced, StatusComplained}

// Subscriber is one reader of the newsletter.
type Subscriber struct {
	ID      int64
	Email   string // stored as given; unique case-insensitively
	Name    string
	Status  string
	Topics  []string // lower-case, sorted, unique; empty means every topic
	Created time.Time
	Updated time.Time
}

// Signup is a sign-up from the web form waiting for its address to be
// confirmed (double opt-in).
type Signup struct {
	ID      int64
	Email   string
	Name    string
	Topics  []string
	Created time.Time // of the latest request: unconfirmed sign-ups expire from it
}

// MaxNameRunes bounds a subscriber's name: longer ones are junk.
const MaxNameRunes = 200

// CleanName turns control characters into spaces, collapses runs of space
// and cuts the name at MaxNameRunes characters: a name ends up in a
// header, and a form can send anything.
func CleanName(s string) string {
	s = strings.Join(strings.FieldsFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }), " ")
	if r := []rune(s); len(r) > MaxNameRunes {
		s = strings.TrimSpace(string(r[:MaxNameRunes]))
	}
	return s
}

// NormalizeTopics returns topics lower-cased, trimmed, sorted and without
// repeats or empty entries. A topic may not contain ',' or ';' (they
// separate topics in the store and in CSV files); nil or no topics means
// every topic.
func NormalizeTopics(topics []string) ([]string, error) {
	var out []string
	for _, t := range topics {
		t = strings.ToLower(strings.TrimSpace(t))
		if t == "" {
			continue
		}
		if err := CheckTopic(t); err != nil {
			return nil, fmt.Errorf("topic %q: %w", t, err)
		}
		out = append(out, t)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// CheckTopic reports why t cannot be a topic: ',' and ';' separate topics
// in the store and in CSV files, and a control character has no place in a
// label. Emptiness is the caller's rule (a list may skip empty entries).
func CheckTopic(t string) error {
	switch {
	case strings.ContainsAny(t, ",;"):
		return errors.New("a topic cannot contain ',' or ';'")
	case strings.IndexFunc(t, unicode.IsControl) >= 0:
		return errors.New("a topic cannot contain control characters")
	}
	return nil
}

// SplitTopics splits a topic list as written by a person ("world; science",
// "world,science") and normalizes it.
func SplitTopics(s string) ([]string, error) {
	return NormalizeTopics(strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ';' }))
}

// JoinTopics is the stored form of normalized topics: comma-joined.
func JoinTopics(topics []string) string { return strings.Join(topics, ",") }

// ParseStoredTopics reads the stored form back.
func ParseStoredTopics(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

// ErrUnknownTopic is wrapped by [CheckTopics] for a topic not offered.
var ErrUnknownTopic = errors.New("unknown topic")

// CheckTopics reports the first of topics that is not in known (both
// normalized), naming the known ones.
func CheckTopics(topics, known []string) error {
	for _, t := range topics {
		if !slices.Contains(known, t) {
			if len(known) == 0 {
				return fmt.Errorf("%w %q: no topics are configured", ErrUnknownTopic, t)
			}
			return fmt.Errorf("%w %q (topics: %s)", ErrUnknownTopic, t, strings.Join(known, ", "))
		}
	}
	return nil
}
