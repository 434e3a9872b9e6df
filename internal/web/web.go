// Package web serves the readers' HTTP endpoints: one-click unsubscribe
// (RFC 8058) and its page, a page to ask for an unsubscribe link by
// address, sign-up with double opt-in, and a preferences page (name,
// topics, unsubscribe from everything).
//
// Every change is made by a POST whose URL carries a signed token (package
// token makes and checks them); a GET never changes anything, because mail
// scanners and link checkers follow every link they see. Answers that an
// outsider could ask about any address (sign-up, link by address) are the
// same whether the address is known or not, and everything they cause (the
// store's lookup and writes, the mail) is done by a background worker after
// the answer, so that not even the time taken tells. A confirmation mail
// carries nothing a stranger typed: the name given with a sign-up is kept
// in the sign-up record and applied once the address is confirmed. A link
// whose token does not check out gets one answer whatever the id in it, and
// a client whose links keep failing is refused for a while.
//
// The handlers reach the store through the small [Store] interface and
// send mail through [Mailer]; [New] returns an http.Handler that `digest
// serve` and `digest daemon` both mount, to which more routes (health,
// metrics) can be added with [Handler.Handle].
package web

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/digest/digest/internal/mail"
	"github.com/digest/digest/internal/subscriber"
)

// Store is what the handlers need of the subscriber store. Errors for a
// missing subscriber or sign-up wrap ledger.ErrNotFound.
type Store interface {
	// Subscriber returns the subscriber with this id.
	Subscriber(ctx context.Context, id int64) (subscriber.Subscriber, error)
	// Get returns the subscriber with this address (case-insensitively).
	Get(ctx context.Context, email string) (subscriber.Subscriber, error)
	// Unsubscribe marks the subscriber unsubscribed; repeating it is
	// harmless.
	Unsubscribe(ctx context.Context, id int64) error
	// Resubscribe makes an unsubscribed subscriber active again, and
	// leaves any other as it is.
	Resubscribe(ctx context.Context, id int64) error
	// SetPreferences stores the subscriber's name and topics.
	SetPreferences(ctx context.Context, id int64, name string, topics []string) error
	// PutSignup records (or renews) a sign-up waiting for confirmation.
	PutSignup(ctx context.Context, email, name string, topics []string) (subscriber.Signup, error)
	// Signup returns the pending sign-up with this id.
	Signup(ctx context.Context, id int64) (subscriber.Signup, error)
	// ConfirmSignup makes the sign-up's address an active subscriber and
	// deletes the sign-up.
	ConfirmSignup(ctx context.Context, id int64) (subscriber.Subscriber, error)
}

// Mailer sends one notice (a confirmation or a link) to its address.
type Mailer interface {
	Send(ctx context.Context, n mail.Notice) error
}

// Topic is one topic readers can choose on the sign-up and preferences
// pages.
type Topic struct {
	Key   string // stored form: lower case
	Label string // shown
}

// Lifetimes of what the handlers hand out.
const (
	// ConfirmLifetime is how long a confirmation link works.
	ConfirmLifetime = 48 * time.Hour
	// SignupLifetime is how long an unconfirmed sign-up is kept; the
	// caller purges older ones (store.PurgeSignups).
	SignupLifetime = 7 * 24 * time.Hour
	// formLifetime is how long a preferences form can be submitted.
	formLifetime = 24 * time.Hour
)

// Limits bounds what one client and one address can cause. The zero value
// of a field takes its default.
type Limits struct {
	// PerClient is how many mail-causing requests (sign-up, link by
	// address) one client address may make in a burst (default 5), and
	// ClientEvery how often one more is allowed (default 1m). IPv6
	// clients are counted by /64 network.
	PerClient   int
	ClientEvery time.Duration
	// AddressEvery is how often one address may be mailed (default 10m):
	// a burst of sign-ups for one address sends one mail.
	AddressEvery time.Duration
	// ConfirmPerHour is the list-wide budget of confirmation mails per
	// hour (default 200), on top of the per-client and per-address
	// limits: many clients signing up many addresses cannot make the
	// list mail strangers faster than that. Sign-ups past it are
	// recorded but not mailed (and logged).
	ConfirmPerHour int
	// BadTokens is how many links whose token does not check out one
	// client may try in a burst (default 20), and BadTokenEvery how often
	// one more is allowed (default 30s); past it every link of that
	// client answers 429.
	BadTokens     int
	BadTokenEvery time.Duration
	// MaxKeys bounds the memory of each limiter (default 100,000 keys);
	// past it, idle entries are dropped, and new clients are refused
	// while every entry is busy.
	MaxKeys int
}

// Options configures the handlers. Store, Mailer, Secret, ListName and
// BaseURL are required.
type Options struct {
	Store  Store
	Mailer Mailer
	Secret []byte // signs and checks the links' tokens
	// ListName is the newsletter's name, shown on every page and mail.
	ListName string
	// BaseURL is the public URL the endpoints are served under (as in the
	// messages' links); its path, if any, prefixes the forms' actions.
	BaseURL string
	// Topics readers can choose; none means the pages offer no choice.
	Topics []Topic
	// DoubleOptIn makes a sign-up wait for the address to be confirmed.
	// Without it a new address is subscribed at once; an address that
	// unsubscribed or bounced still has to confirm, so that nobody can
	// re-subscribe someone who left.
	DoubleOptIn bool
	// Rules checks the addresses typed into the forms.
	Rules subscriber.Rules
	// ClientIPHeader names the header a reverse proxy sets to the
	// client's address (X-Forwarded-For: its last entry; X-Real-IP);
	// empty means the connection's address.
	ClientIPHeader string
	Limits         Limits
	// Now is the clock for token expiry and rate limits; nil means
	// time.Now.
	Now func() time.Time
	// Logger receives one line per change and per failure; nil discards.
	Logger *slog.Logger
	// MailTimeout bounds sending one notice (default 1m).
	MailTimeout time.Duration
}

// Handler serves the readers' endpoints. It is an http.Handler; further
// routes can be added with Handle. Close stops its background mail sender.
type Handler struct {
	opts     Options
	mux      *http.ServeMux
	pages    *pages
	mails    *mailTemplates
	basePath string
	baseURL  string
	csp      string

	perClient  *limiter
	perAddress *limiter
	confirms   *limiter // one key: the list
	badTokens  *limiter

	mu     sync.Mutex
	closed bool
	queue  chan task
	wg     sync.WaitGroup // tasks queued and not yet done
	done   chan struct{}

	budgetSpent bool // under mu: the confirmation budget ran out (logged once)
}

// task is work a request hands to the background worker: a sign-up or a
// link request, with the mail it may cause.
type task struct {
	kind string // for the logs: "sign-up", "link"
	run  func(ctx context.Context) error
}

// queueSize bounds the tasks waiting; past it they are dropped (and
// logged): the page a reader sees is the same either way, and the rate
// limits keep an honest load far below it.
const queueSize = 256

// New checks opts, parses the pages and starts the mail sender.
func New(opts Options) (*Handler, error) {
	switch {
	case opts.Store == nil:
		return nil, errors.New("web: no store")
	case opts.Mailer == nil:
		return nil, errors.New("web: no mailer")
	case len(opts.Secret) == 0:
		return nil, errors.New("web: no secret to sign links with")
	}
	u, err := url.Parse(strings.TrimSpace(opts.BaseURL))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("web: base URL %q is not an absolute http(s) URL", opts.BaseURL)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MailTimeout <= 0 {
		opts.MailTimeout = time.Minute
	}
	l := &opts.Limits
	if l.PerClient <= 0 {
		l.PerClient = 5
	}
	if l.ClientEvery <= 0 {
		l.ClientEvery = time.Minute
	}
	if l.AddressEvery <= 0 {
		l.AddressEvery = 10 * time.Minute
	}
	if l.MaxKeys <= 0 {
		l.MaxKeys = 100_000
	}
	if l.ConfirmPerHour <= 0 {
		l.ConfirmPerHour = 200
	}
	if l.BadTokens <= 0 {
		l.BadTokens = 20
	}
	if l.BadTokenEvery <= 0 {
		l.BadTokenEvery = 30 * time.Second
	}
	pg, err := parsePages()
	if err != nil {
		return nil, err
	}
	mt, err := parseMailTemplates()
	if err != nil {
		return nil, err
	}
	h := &Handler{
		opts: opts, mux: http.NewServeMux(), pages: pg, mails: mt,
		baseURL:    strings.TrimRight(u.String(), "/"),
		basePath:   strings.TrimRight(u.EscapedPath(), "/"),
		perClient:  newLimiter(l.ClientEvery, l.PerClient, l.MaxKeys),
		perAddress: newLimiter(l.AddressEvery, 1, l.MaxKeys),
		confirms:   newLimiter(time.Hour/time.Duration(l.ConfirmPerHour), l.ConfirmPerHour, 1),
		badTokens:  newLimiter(l.BadTokenEvery, l.BadTokens, l.MaxKeys),
		queue:      make(chan task, queueSize),
		done:       make(chan struct{}),
	}
	sum := sha256.Sum256([]byte(pageStyle))
	h.csp = "default-src 'none'; style-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) +
		"'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

	h.route("GET /{$}", h.home)
	h.route("GET /u/{token}", h.unsubscribePage)
	h.route("POST /u/{token}", h.unsubscribe)
	h.route("GET /unsubscribe", h.requestLinkPage)
	h.route("POST /unsubscribe", h.requestLink)
	h.route("GET /subscribe", h.subscribePage)
	h.route("POST /subscribe", h.subscribe)
	h.route("GET /confirm/{token}", h.confirmPage)
	h.route("POST /confirm/{token}", h.confirm)
	h.route("GET /p/{token}", h.preferencesPage)
	h.route("POST /p/{token}", h.savePreferences)
	go h.sender()
	return h, nil
}

// route registers a page handler behind the security headers.
func (h *Handler) route(pattern string, fn http.HandlerFunc) {
	h.mux.Handle(pattern, h.secure(fn))
}

// Handle adds a route to the same mux (for /healthz and /metrics from the
// daemon), with Go's ServeMux patterns ("GET /healthz"). The handler gets
// no security headers or body limit: it answers with what it needs.
func (h *Handler) Handle(pattern string, handler http.Handler) { h.mux.Handle(pattern, handler) }

// ServeHTTP serves a request.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// Close stops taking tasks and waits until the queued ones are done (their
// notices handed to the mailer), or ctx ends.
func (h *Handler) Close(ctx context.Context) error {
	h.mu.Lock()
	if !h.closed {
		h.closed = true
		close(h.queue)
	}
	h.mu.Unlock()
	select {
	case <-h.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("web: %d sign-ups or link requests not handled: %w", len(h.queue), ctx.Err())
	}
}

// Wait blocks until every task queued so far is done, its notice handed
// to the mailer (sent or failed): for tests, between a request and a look
// at the store or the mail.
func (h *Handler) Wait() { h.wg.Wait() }

// maxBody bounds a form: a few short fields.
const maxBody = 16 << 10

// secure sets the headers every page gets and bounds the request body.
func (h *Handler) secure(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", h.csp)
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Cache-Control", "no-store")
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		next.ServeHTTP(w, r)
	})
}

// enqueue hands a task to the background worker.
func (h *Handler) enqueue(t task) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		h.opts.Logger.Warn("web: shutting down, request not handled", "kind", t.kind)
		return
	}
	h.wg.Add(1)
	select {
	case h.queue <- t:
	default:
		h.wg.Done()
		h.opts.Logger.Warn("web: queue full, request dropped", "kind", t.kind)
	}
}

func (h *Handler) sender() {
	defer close(h.done)
	for t := range h.queue {
		ctx, cancel := context.WithTimeout(context.Background(), h.opts.MailTimeout)
		if err := t.run(ctx); err != nil {
			h.opts.Logger.Error("web: "+t.kind+" failed", "err", err)
		}
		cancel()
		h.wg.Done()
	}
}

// withoutAddress is err with every spelling of email in its text replaced,
// for the log, which never carries a reader's address.
func withoutAddress(err error, email string) error {
	if err == nil || email == "" {
		return err
	}
	msg := err.Error()
	lower, key := strings.ToLower(msg), strings.ToLower(email)
	if len(lower) != len(msg) || len(key) != len(email) {
		// Lower-casing changed byte lengths (some non-ASCII letters do), so
		// indexes in one are not indexes in the other: replace the
		// spellings known instead.
		for _, a := range []string{email, key, subscriber.EmailKey(email)} {
			if a != "" {
				msg = strings.ReplaceAll(msg, a, "<address>")
			}
		}
		return errors.New(msg)
	}
	var b strings.Builder
	for {
		i := strings.Index(lower, key)
		if i < 0 {
			break
		}
		b.WriteString(msg[:i] + "<address>")
		msg, lower = msg[i+len(key):], lower[i+len(key):]
	}
	b.WriteString(msg)
	return errors.New(b.String())
}

// send renders notice kind for d and hands it to the mailer.
func (h *Handler) send(ctx context.Context, kind, subject string, d mailData) error {
	n, err := h.notice(kind, subject, d)
	if err != nil {
		return err
	}
	if err := h.opts.Mailer.Send(ctx, n); err != nil {
		return fmt.Errorf("sending %s notice: %w", kind, err)
	}
	h.opts.Logger.Info("web: notice sent", "kind", kind)
	return nil
}
