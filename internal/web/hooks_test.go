package web

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/digest/digest/internal/bounce"
)

type eventSink struct {
	mu  sync.Mutex
	evs []bounce.Event
}

func (s *eventSink) HandleEvent(_ context.Context, ev bounce.Event) (bounce.Event, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.evs = append(s.evs, ev)
	return ev, nil
}

var hookNow = time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)

const (
	certURL  = "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-test.pem"
	topicARN = "arn:aws:sns:eu-west-1:123456789012:digest-bounces"
)

type hookFixture struct {
	hooks     *Hooks
	sink      *eventSink
	rsaKey    *rsa.PrivateKey
	ecKey     *ecdsa.PrivateKey
	confirmed []string
}

func newHookFixture(t *testing.T) *hookFixture {
	t.Helper()
	f := &hookFixture{sink: &eventSink{}}
	var err error
	if f.rsaKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		t.Fatal(err)
	}
	if f.ecKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sns.amazonaws.com"},
		NotBefore: hookNow.Add(-time.Hour), NotAfter: hookNow.Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &f.rsaKey.PublicKey, f.rsaKey)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	pub, _ := x509.MarshalPKIXPublicKey(&f.ecKey.PublicKey)
	sgKey, err := ParseSendGridKey(base64.StdEncoding.EncodeToString(pub))
	if err != nil {
		t.Fatal(err)
	}
	f.hooks = NewHooks(HookOptions{
		Handler: f.sink, Parser: bounce.NewParser(bounce.Options{BounceAddress: "bounces@news.example.org"}),
		PostmarkUser: "pm", PostmarkPassword: "pm-secret", MailgunKey: "mg-key", SendGridKey: sgKey, SESTopicARN: topicARN,
		SNS: &SNSVerifier{
			FetchCert: func(_ context.Context, u string) ([]byte, error) {
				if u != certURL {
					t.Errorf("fetched %s", u)
				}
				return certPEM, nil
			},
			Confirm: func(_ context.Context, u string) error { f.confirmed = append(f.confirmed, u); return nil },
			Now:     func() time.Time { return hookNow },
		},
	})
	return f
}

func (f *hookFixture) post(provider string, body []byte, set func(*http.Request)) int {
	r := httptest.NewRequest(http.MethodPost, "/hooks/"+provider, bytes.NewReader(body))
	if set != nil {
		set(r)
	}
	rw := httptest.NewRecorder()
	f.hooks.ServeHTTP(rw, r)
	return rw.Code
}

func (f *hookFixture) snsBody(t *testing.T, typ, message, ts, cert, topic string, version string) []byte {
	t.Helper()
	m := snsMessage{Type: typ, MessageID: "sns-1", TopicArn: topic, Message: message, Timestamp: ts,
		SignatureVersion: version, SigningCertURL: cert, SubscribeURL: "https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription&Token=x", Token: "x"}
	text := []byte(snsStringToSign(m))
	var sig []byte
	var err error
	if version == "1" {
		sum := sha1Sum(text)
		sig, err = rsa.SignPKCS1v15(rand.Reader, f.rsaKey, crypto.SHA1, sum)
	} else {
		sum := sha256.Sum256(text)
		sig, err = rsa.SignPKCS1v15(rand.Reader, f.rsaKey, crypto.SHA256, sum[:])
	}
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(map[string]string{"Type": m.Type, "MessageId": m.MessageID, "TopicArn": m.TopicArn, "Message": m.Message,
		"Timestamp": m.Timestamp, "SignatureVersion": version, "Signature": base64.StdEncoding.EncodeToString(sig),
		"SigningCertURL": m.SigningCertURL, "SubscribeURL": m.SubscribeURL, "Token": m.Token})
	return b
}

func TestHooks(t *testing.T) {
	t.Parallel()
	f := newHookFixture(t)
	postmark := []byte(`{"RecordType":"Bounce","ID":42,"Type":"HardBounce","Email":"ada@example.org","Details":"smtp;550 5.1.1 The email account that you tried to reach does not exist"}`)
	basic := func(u, p string) func(*http.Request) { return func(r *http.Request) { r.SetBasicAuth(u, p) } }

	mgData := `{"event":"complained","id":"mg-1","recipient":"bob@example.org","message":{"headers":{"message-id":"2026-11-30.7.0011223344556677@example.org"}}}`
	mgBody := func(key string) []byte { return mailgunSigned(key, hookNow, "tok", mgData) }

	sg := []byte(`[{"email":"cy@example.org","event":"bounce","sg_event_id":"sg-1","status":"5.1.1","reason":"550 5.1.1 user unknown","smtp-id":"<2026-11-30.9.0011223344556677@example.org>"},{"email":"cy@example.org","event":"open","sg_event_id":"sg-2"}]`)
	sgSign := func(key *ecdsa.PrivateKey, ts string, body []byte) func(*http.Request) {
		sum := sha256.Sum256(append([]byte(ts), body...))
		sig, _ := ecdsa.SignASN1(rand.Reader, key, sum[:])
		return func(r *http.Request) {
			r.Header.Set(sendGridSignature, base64.StdEncoding.EncodeToString(sig))
			r.Header.Set(sendGridTimestamp, ts)
		}
	}
	otherEC, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)

	sesMsg := `{"notificationType":"Bounce","bounce":{"bounceType":"Permanent","bounceSubType":"General","bouncedRecipients":[{"emailAddress":"dee@example.org","action":"failed","status":"5.1.1","diagnosticCode":"smtp; 550 5.1.1 user unknown"}]},"mail":{"source":"bounces+NDIuMjAyNi0wNS0wNJfl2xF32LK5sJeuTP_k8mI@news.example.org"}}`
	ts := hookNow.Add(-time.Minute).Format(time.RFC3339)

	tests := []struct {
		name     string
		provider string
		body     []byte
		set      func(*http.Request)
		code     int
		kind     bounce.Kind // of the event recorded; "" none
	}{
		{"postmark", "postmark", postmark, basic("pm", "pm-secret"), 200, bounce.Hard},
		{"postmark bad password", "postmark", postmark, basic("pm", "guess"), 401, ""},
		{"postmark no auth", "postmark", postmark, nil, 401, ""},
		{"mailgun", "mailgun", mgBody("mg-key"), nil, 200, bounce.Complaint},
		{"mailgun forged", "mailgun", mgBody("other-key"), nil, 401, ""},
		{"sendgrid", "sendgrid", sg, sgSign(f.ecKey, "1764493200", sg), 200, bounce.Hard},
		{"sendgrid other key", "sendgrid", sg, sgSign(otherEC, "1764493200", sg), 401, ""},
		{"sendgrid body changed", "sendgrid", bytes.Replace(sg, []byte("cy@"), []byte("zz@"), 1), sgSign(f.ecKey, "1764493200", sg), 401, ""},
		{"ses v2", "ses", f.snsBody(t, "Notification", sesMsg, ts, certURL, topicARN, "2"), nil, 200, bounce.Hard},
		{"ses v1", "ses", f.snsBody(t, "Notification", strings.Replace(sesMsg, "dee@", "eve@", 1), ts, certURL, topicARN, "1"), nil, 200, bounce.Hard},
		{"ses cert off amazonaws", "ses", f.snsBody(t, "Notification", sesMsg, ts, "https://sns.eu-west-1.amazonaws.com.evil.example/x.pem", topicARN, "2"), nil, 401, ""},
		{"ses cert over http", "ses", f.snsBody(t, "Notification", sesMsg, ts, strings.Replace(certURL, "https", "http", 1), topicARN, "2"), nil, 401, ""},
		{"ses stale", "ses", f.snsBody(t, "Notification", sesMsg, hookNow.Add(-2*time.Hour).Format(time.RFC3339), certURL, topicARN, "2"), nil, 401, ""},
		{"ses other topic", "ses", f.snsBody(t, "Notification", sesMsg, ts, certURL, "arn:aws:sns:eu-west-1:999:theirs", "2"), nil, 401, ""},
		{"ses tampered", "ses", bytes.Replace(f.snsBody(t, "Notification", sesMsg, ts, certURL, topicARN, "2"), []byte("dee@"), []byte("fay@"), 1), nil, 401, ""},
		{"unknown provider", "other", []byte("{}"), nil, 404, ""},
	}
	for _, tt := range tests {
		before := len(f.sink.evs)
		if code := f.post(tt.provider, tt.body, tt.set); code != tt.code {
			t.Errorf("%s: status %d, want %d", tt.name, code, tt.code)
		}
		got := f.sink.evs[before:]
		switch {
		case tt.kind == "" && len(got) != 0:
			t.Errorf("%s: recorded %+v", tt.name, got)
		case tt.kind != "" && (len(got) == 0 || got[0].Kind != tt.kind || !got[0].Authenticated || got[0].Source != tt.provider):
			t.Errorf("%s: recorded %+v, want a %s event from %s", tt.name, got, tt.kind, tt.provider)
		}
	}
	// What the events carry to name their reader.
	for _, ev := range f.sink.evs {
		switch ev.Source {
		case "ses":
			if len(ev.Tokens.VERP) != 1 {
				t.Errorf("ses event without the VERP token of mail.source: %+v", ev.Tokens)
			}
		case "mailgun", "sendgrid":
			if len(ev.Tokens.MessageIDs) == 0 && ev.Kind != bounce.Unmatched {
				t.Errorf("%s event without our Message-ID: %+v", ev.Source, ev)
			}
		}
	}

	// A subscription confirmation is confirmed once verified.
	if code := f.post("ses", f.snsBody(t, "SubscriptionConfirmation", "confirm", ts, certURL, topicARN, "2"), nil); code != 200 || len(f.confirmed) != 1 {
		t.Errorf("subscription confirmation: %d, confirmed %q", code, f.confirmed)
	}
	if code := f.post("ses", f.snsBody(t, "SubscriptionConfirmation", "confirm", ts, certURL, "arn:aws:sns:eu-west-1:999:theirs", "2"), nil); code != 401 || len(f.confirmed) != 1 {
		t.Errorf("confirmation for another topic: %d, confirmed %q", code, f.confirmed)
	}
	r := httptest.NewRequest(http.MethodGet, "/hooks/postmark", nil)
	rw := httptest.NewRecorder()
	f.hooks.ServeHTTP(rw, r)
	if rw.Code != http.StatusMethodNotAllowed {
		t.Errorf("GET: %d", rw.Code)
	}
}

// mailgunSigned is a Mailgun webhook body signed under key at ts with token.
func mailgunSigned(key string, ts time.Time, token, data string) []byte {
	stamp := strconv.FormatInt(ts.Unix(), 10)
	mac := hmac.New(sha256.New, []byte(key))
	mac.Write([]byte(stamp + token))
	return []byte(`{"signature":{"timestamp":"` + stamp + `","token":"` + token + `","signature":"` + hex.EncodeToString(mac.Sum(nil)) + `"},"event-data":` + data + `}`)
}

// A Mailgun signature seen once cannot carry another event: an old one is
// refused, and its token used again is the same event, recorded once.
func TestMailgunSignatureReuse(t *testing.T) {
	t.Parallel()
	f := newHookFixture(t)
	old := mailgunSigned("mg-key", hookNow.Add(-time.Hour), "tok-old", `{"event":"complained","id":"a","recipient":"ann@example.org"}`)
	if code := f.post("mailgun", old, nil); code != http.StatusUnauthorized {
		t.Errorf("an hour-old signature: %d, want 401", code)
	}
	first := mailgunSigned("mg-key", hookNow, "tok-1", `{"event":"complained","id":"b","recipient":"ann@example.org"}`)
	forged := mailgunSigned("mg-key", hookNow, "tok-1", `{"event":"failed","severity":"permanent","id":"c","recipient":"bob@example.org"}`)
	for _, body := range [][]byte{first, forged} {
		if code := f.post("mailgun", body, nil); code != http.StatusOK {
			t.Fatalf("mailgun: %d", code)
		}
	}
	fps := map[string]bool{}
	f.sink.mu.Lock()
	defer f.sink.mu.Unlock()
	for _, ev := range f.sink.evs {
		fps[ev.Fingerprint] = true
	}
	if len(fps) != 1 {
		t.Errorf("events with %d fingerprints from one signature token, want 1: %+v", len(fps), f.sink.evs)
	}
}
