package bounce

import (
	"errors"

	"github.com/digest/digest/internal/ledger"
	"github.com/digest/digest/internal/mail"
	"github.com/digest/digest/internal/token"
)

// Reader is the subscriber (and the issue) a verdict is about.
type Reader struct {
	SubscriberID int64
	IssueID      string
	// Via says which token named the reader: verp, message-id or
	// list-unsubscribe.
	Via string
}

// ErrNoReader is returned by Identify when no signed token names a
// subscriber: none was found, all were forged, or the reader they name
// has been deleted.
var ErrNoReader = errors.New("no signed token names a reader")

// Resolver finds the reader a verdict is about from its signed tokens.
type Resolver struct {
	// Secret is the one the messages were signed with.
	Secret []byte
	// Lookup gives the address of a subscriber id; an error wrapping
	// ledger.ErrNotFound means the reader is gone.
	Lookup token.Lookup
	// Sent, when set, reports whether an issue was sent to a subscriber:
	// a Message-ID, which is not bound to the address, names only a
	// reader who was sent that issue.
	Sent func(issueID string, subscriberID int64) (bool, error)
	// ByAddress gives the subscriber id of an address (an error wrapping
	// ledger.ErrNotFound when none), for authenticated events only.
	ByAddress func(email string) (int64, error)
}

// IdentifyAddress names the reader of an authenticated event by its
// address; ErrNoReader when nobody has it.
func (r Resolver) IdentifyAddress(email string) (Reader, error) {
	if r.ByAddress == nil || email == "" {
		return Reader{}, ErrNoReader
	}
	id, err := r.ByAddress(email)
	if rd, done, err := r.result(id, "", "address", err); done {
		return rd, err
	}
	return Reader{}, ErrNoReader
}

// Identify tries the VERP tokens, then the Message-IDs, then the
// List-Unsubscribe tokens, and returns the first reader a genuine one
// names. It returns ErrNoReader when none does, and the lookup's error
// when the store cannot answer (so that the caller retries later).
func (r Resolver) Identify(t Tokens) (Reader, error) {
	for _, tok := range t.VERP {
		id, issue, err := mail.ParseVERPToken(r.Secret, tok, r.Lookup)
		if rd, done, err := r.result(id, issue, "verp", err); done {
			return rd, err
		}
	}
	for _, mid := range t.MessageIDs {
		issue, id, err := mail.ParseMessageID(r.Secret, mid)
		if err == nil {
			_, err = r.Lookup(id)
		}
		if err == nil && r.Sent != nil {
			var sent bool
			if sent, err = r.Sent(issue, id); err == nil && !sent {
				continue // an id since given to another reader
			}
		}
		if rd, done, err := r.result(id, issue, "message-id", err); done {
			return rd, err
		}
	}
	for _, tok := range t.Unsubscribe {
		id, issue, err := token.ParseUnsubscribe(r.Secret, tok, r.Lookup)
		if rd, done, err := r.result(id, issue, "list-unsubscribe", err); done {
			return rd, err
		}
	}
	return Reader{}, ErrNoReader
}

// result says whether one candidate settles the search: a reader, or a
// store that cannot answer. A forged token or a reader who left does not.
func (r Resolver) result(id int64, issue, via string, err error) (Reader, bool, error) {
	switch {
	case err == nil:
		return Reader{SubscriberID: id, IssueID: issue, Via: via}, true, nil
	case errors.Is(err, token.ErrInvalid), errors.Is(err, ledger.ErrNotFound):
		return Reader{}, false, nil
	}
	return Reader{}, true, err
}
