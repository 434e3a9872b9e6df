// Package article holds the Article type that every source produces and the
// pure functions that make articles safe and comparable: sanitizing, teasers,
// canonical links and duplicate removal.
package article

import "time"

// Article is one story as gathered from a source, ready for selection.
type Article struct {
	// ID is a stable identity: the source's GUID when it has one, otherwise
	// the canonical link.
	ID        string    `json:"id"`
	Title     string    `json:"title"`  // plain text
	Link      string    `json:"link"`   // absolute URL
	Source    string    `json:"source"` // source name from the config
	Section   string    `json:"section"`
	Published time.Time `json:"published"`
	// Updated is when the source says the story last changed, when that
	// is after Published; zero otherwise. Selection uses it to
	// let a story that is still edited settle.
	Updated time.Time `json:"-"`
	Teaser  string    `json:"teaser"` // plain text, already cut
	Image   string    `json:"image,omitempty"`
	Tags    []string  `json:"tags,omitempty"`
	Draft   bool      `json:"draft,omitempty"`
}
