package ledger

import "time"

// The records below are the selection's memory of stories and sources,
// kept by the store for the use cases (settle, backfill).

// Sighting is one story as a run saw it: its ID and a fingerprint of what
// a reader sees of it (title, teaser, link), so that a change is noticed.
type Sighting struct {
	ID          string
	Fingerprint string
}

// Observed is what the store knows of a story after a sighting.
type Observed struct {
	FirstSeen time.Time
	// Changed is the last time a sighting's fingerprint differed from the
	// one before; zero when it never did. The first sighting is not a
	// change.
	Changed time.Time
	// Backlog: the story was in a new source's backlog and is never to be
	// sent.
	Backlog bool
}
