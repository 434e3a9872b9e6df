package bounce

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
)

// Recorder keeps an event and applies the policy to its reader. It returns
// the event with its Action (ActionDuplicate for a replay), or an error
// when the store cannot be reached: the caller then has the message sent
// again later.
type Recorder interface {
	RecordBounce(ctx context.Context, ev Event) (Event, error)
}

// Handler is the one path from a returned message or an ESP event to the
// store, whichever way it came in (pipe, SMTP, IMAP, webhook).
type Handler struct {
	Parser   *Parser
	Resolver Resolver
	Store    Recorder
	// Observe, when set, sees every event handled (metrics).
	Observe func(Event)
	Logger  *slog.Logger
}

// ErrUnavailable wraps the errors of a store that cannot answer: the
// message is to be retried (exit 75, SMTP 451, left in the mailbox).
var ErrUnavailable = errors.New("bounce store unavailable")

// HandleMessage reads one message that came in by source, finds its
// reader and records it. Only
// a store failure is an error (wrapping ErrUnavailable); garbage, a loop or
// a reader nobody can name is an unmatched event, recorded and counted.
func (h *Handler) HandleMessage(ctx context.Context, raw []byte, source string) (Event, error) {
	return h.HandleMessageTo(ctx, raw, source, "")
}

// HandleMessageTo is HandleMessage of a message whose envelope recipient
// is known (the SMTP receiver's RCPT TO): its VERP token is tried first.
// The same bytes for another recipient are another event.
func (h *Handler) HandleMessageTo(ctx context.Context, raw []byte, source, envelopeTo string) (Event, error) {
	v := h.Parser.ParseBytes(raw, envelopeTo)
	sum := sha256.New()
	sum.Write([]byte(envelopeTo))
	sum.Write([]byte{0})
	sum.Write(raw)
	ev := Event{Fingerprint: "sha256:" + hex.EncodeToString(sum.Sum(nil)), Source: source, Verdict: v, Raw: raw}
	return h.record(ctx, ev)
}

// HandleEvent records an event that already carries its verdict (an ESP
// webhook's), naming its reader by Tokens or, when it came authenticated,
// by Reader already.
func (h *Handler) HandleEvent(ctx context.Context, ev Event) (Event, error) {
	return h.record(ctx, ev)
}

func (h *Handler) record(ctx context.Context, ev Event) (Event, error) {
	if ev.Reader.SubscriberID == 0 && ev.Kind != Unmatched {
		rd, err := h.Resolver.Identify(ev.Tokens)
		if errors.Is(err, ErrNoReader) && ev.Authenticated {
			rd, err = h.Resolver.IdentifyAddress(ev.Recipient)
		}
		switch {
		case errors.Is(err, ErrNoReader):
			if ev.Reason == "" {
				ev.Reason = "no signed token names a reader"
			}
		case err != nil:
			return ev, fmt.Errorf("%w: %w", ErrUnavailable, err)
		default:
			ev.Reader = rd
		}
	}
	out, err := h.Store.RecordBounce(ctx, ev)
	if err != nil {
		return ev, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if h.Observe != nil {
		h.Observe(out)
	}
	if h.Logger != nil {
		h.Logger.Info("bounce event", "source", out.Source, "kind", string(out.Kind), "status", out.Status,
			"subscriber", out.Reader.SubscriberID, "issue", out.Reader.IssueID, "via", out.Reader.Via,
			"action", out.Action, "reason", out.Reason)
	}
	return out, nil
}
