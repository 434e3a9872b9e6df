// Package subscriber defines a subscriber and reads subscriber lists from CSV.
package subscriber

import "time"

// Status of a subscriber.
const (
	StatusActive       = "active"
	StatusUnsubscribed = "unsubscribed"
	StatusBounced      = "bounced"
)

// Subscriber is one reader of the newsletter.
type Subscriber struct {
	ID      int64
	Email   string // stored as given; unique case-insensitively
	Name    string
	Status  string
	Created time.Time
}
