package web

import (
	"context"
	"crypto/ecdsa"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/digest/digest/internal/bounce"
)

// EventHandler records one ESP event (bounce.Handler). Errors wrapping
// bounce.ErrUnavailable are answered 503, so that the provider retries.
type EventHandler interface {
	HandleEvent(ctx context.Context, ev bounce.Event) (bounce.Event, error)
}

// HookOptions configures the ESP webhooks. A provider whose keys are empty
// is not served (404).
type HookOptions struct {
	Handler EventHandler
	Parser  *bounce.Parser
	// Postmark: HTTP basic auth on the URL given to Postmark.
	PostmarkUser, PostmarkPassword string
	// MailgunKey is the webhook signing key.
	MailgunKey string
	// SendGridKey is the Event Webhook's verification key (ECDSA P-256).
	SendGridKey *ecdsa.PublicKey
	// SESTopicARN is the SNS topic the SES notifications come from;
	// any other topic is refused, whoever signed it.
	SESTopicARN string
	// SNS are the certificate fetcher, the subscription confirmer and the
	// clock of the SES verification; zero values use HTTPS and time.Now.
	SNS *SNSVerifier
	// Now is the clock the providers' timestamps are checked on; nil: the
	// SNS verifier's, else time.Now.
	Now    func() time.Time
	Logger *slog.Logger
}

// Hooks serves POST /hooks/{provider} for postmark, mailgun, sendgrid and
// ses, each with its provider's authentication: a request that fails it is
// answered 401 and changes nothing. Replays are harmless: an event's
// provider id is its fingerprint.
type Hooks struct {
	o HookOptions
}

// NewHooks returns the webhook handler.
func NewHooks(o HookOptions) *Hooks {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.SNS == nil {
		o.SNS = &SNSVerifier{}
	}
	if o.Now == nil {
		o.Now = o.SNS.Now
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	o.SNS.init()
	return &Hooks{o: o}
}

// maxHookBody bounds a webhook body (SendGrid batches events).
const maxHookBody = 5 << 20

var (
	errHookAuth = errors.New("authentication failed")
	errNoHook   = errors.New("no such webhook")
)

// ServeHTTP answers POST /hooks/{provider}: 200 once every event is
// recorded, 401 on bad authentication, 400 for a body it cannot read, 404
// for a provider not configured, 503 when the store is unavailable.
func (h *Hooks) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	provider := strings.TrimPrefix(r.URL.Path, "/hooks/")
	if r.Method != http.MethodPost {
		rw.Header().Set("Allow", http.MethodPost)
		http.Error(rw, "POST only", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(rw, r.Body, maxHookBody))
	if err != nil {
		http.Error(rw, "body too large", http.StatusRequestEntityTooLarge)
		return
	}
	evs, err := h.events(r, provider, body)
	switch {
	case errors.Is(err, errNoHook):
		http.NotFound(rw, r)
		return
	case errors.Is(err, errHookAuth):
		h.o.Logger.Warn("webhook refused", "provider", provider, "err", err)
		if provider == "postmark" {
			rw.Header().Set("WWW-Authenticate", `Basic realm="digest hooks"`)
		}
		http.Error(rw, "unauthorized", http.StatusUnauthorized)
		return
	case err != nil:
		h.o.Logger.Warn("webhook not understood", "provider", provider, "err", err)
		http.Error(rw, "bad request: "+err.Error(), http.StatusBadRequest)
		return
	}
	for _, ev := range evs {
		if _, err := h.o.Handler.HandleEvent(r.Context(), ev); err != nil {
			h.o.Logger.Error("webhook event not recorded; the provider will retry", "provider", provider, "err", err)
			http.Error(rw, "try again later", http.StatusServiceUnavailable)
			return
		}
	}
	rw.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintf(rw, "ok: %d events\n", len(evs))
}

// events authenticates a request and parses its events.
func (h *Hooks) events(r *http.Request, provider string, body []byte) ([]bounce.Event, error) {
	switch provider {
	case "postmark":
		if h.o.PostmarkUser == "" {
			return nil, errNoHook
		}
		u, pw, ok := r.BasicAuth()
		if !ok || !equal(u, h.o.PostmarkUser) || !equal(pw, h.o.PostmarkPassword) {
			return nil, fmt.Errorf("%w: basic auth", errHookAuth)
		}
		return h.o.Parser.Postmark(body)
	case "mailgun":
		if h.o.MailgunKey == "" {
			return nil, errNoHook
		}
		return h.mailgun(body)
	case "sendgrid":
		if h.o.SendGridKey == nil {
			return nil, errNoHook
		}
		if err := verifySendGrid(h.o.SendGridKey, r.Header, body); err != nil {
			return nil, err
		}
		return h.o.Parser.SendGrid(body)
	case "ses":
		if h.o.SESTopicARN == "" {
			return nil, errNoHook
		}
		return h.ses(r.Context(), body)
	}
	return nil, errNoHook
}

func equal(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

// mailgun checks the signature: hex HMAC-SHA256 of timestamp+token under
// the signing key.
func (h *Hooks) mailgun(body []byte) ([]bounce.Event, error) {
	var m struct {
		Signature struct{ Timestamp, Token, Signature string } `json:"signature"`
		EventData json.RawMessage                              `json:"event-data"`
	}
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, fmt.Errorf("%w: mailgun body: %v", errHookAuth, err)
	}
	mac := hmac.New(sha256.New, []byte(h.o.MailgunKey))
	mac.Write([]byte(m.Signature.Timestamp + m.Signature.Token))
	want := hex.EncodeToString(mac.Sum(nil))
	if m.Signature.Token == "" || !hmac.Equal([]byte(want), []byte(strings.ToLower(m.Signature.Signature))) {
		return nil, fmt.Errorf("%w: mailgun signature", errHookAuth)
	}
	// The signature covers the timestamp and token, not the event: a
	// signature seen once must not carry another event. So it must be
	// fresh, and its token names the event (a token used again is a
	// replay, recorded once).
	ts, err := strconv.ParseInt(m.Signature.Timestamp, 10, 64)
	if err != nil || h.o.Now().Sub(time.Unix(ts, 0)).Abs() > mailgunMaxAge {
		return nil, fmt.Errorf("%w: mailgun timestamp %q is not within %s of now", errHookAuth, m.Signature.Timestamp, mailgunMaxAge)
	}
	evs, err := h.o.Parser.Mailgun(m.EventData)
	for i := range evs {
		evs[i].Fingerprint = "mailgun-token:" + m.Signature.Token
	}
	return evs, err
}

// mailgunMaxAge is how far a Mailgun signature's timestamp may be from now.
const mailgunMaxAge = 15 * time.Minute

// SendGrid's signature headers.
const (
	sendGridSignature = "X-Twilio-Email-Event-Webhook-Signature"
	sendGridTimestamp = "X-Twilio-Email-Event-Webhook-Timestamp"
)

// verifySendGrid checks the ECDSA signature (base64 DER) over
// timestamp+body.
func verifySendGrid(key *ecdsa.PublicKey, h http.Header, body []byte) error {
	sig, err := decodeBase64(h.Get(sendGridSignature))
	ts := h.Get(sendGridTimestamp)
	if err != nil || ts == "" {
		return fmt.Errorf("%w: sendgrid signature headers", errHookAuth)
	}
	sum := sha256.Sum256(append([]byte(ts), body...))
	if !ecdsa.VerifyASN1(key, sum[:], sig) {
		return fmt.Errorf("%w: sendgrid signature", errHookAuth)
	}
	return nil
}

// ses verifies an SNS message and handles it: a subscription
// confirmation is confirmed, a notification parsed.
func (h *Hooks) ses(ctx context.Context, body []byte) ([]bounce.Event, error) {
	m, err := h.o.SNS.Verify(ctx, body)
	if err != nil {
		return nil, err
	}
	if m.TopicArn != h.o.SESTopicARN {
		return nil, fmt.Errorf("%w: topic %q is not bounces.webhooks.ses.topic_arn", errHookAuth, m.TopicArn)
	}
	switch m.Type {
	case "SubscriptionConfirmation":
		if err := h.o.SNS.confirm(ctx, m.SubscribeURL); err != nil {
			return nil, fmt.Errorf("confirming the SNS subscription: %w", err)
		}
		h.o.Logger.Info("SNS subscription confirmed", "topic", m.TopicArn)
		return nil, nil
	case "Notification":
		return h.o.Parser.SES([]byte(m.Message), m.MessageID)
	}
	return nil, nil // UnsubscribeConfirmation: nothing to do
}
