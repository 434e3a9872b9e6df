package web

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // SNS SignatureVersion 1 is SHA1withRSA
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"
)

// SNSVerifier checks Amazon SNS messages: the signing certificate's URL
// must be https on an SNS host of amazonaws.com, the signature (version 1,
// SHA1withRSA, or 2, SHA256withRSA) must verify with that certificate,
// which must be valid now, and the message must be at most an hour old.
type SNSVerifier struct {
	// FetchCert returns the PEM at a certificate URL already checked;
	// nil: an HTTPS GET. Certificates are cached by URL.
	FetchCert func(ctx context.Context, url string) ([]byte, error)
	// Confirm visits a subscription's SubscribeURL (already checked to
	// be an SNS host); nil: an HTTPS GET.
	Confirm func(ctx context.Context, url string) error
	// Now is the clock; nil: time.Now.
	Now func() time.Time

	mu    sync.Mutex
	certs map[string]*x509.Certificate
}

// snsMessage is an SNS HTTP(S) message.
type snsMessage struct {
	Type, MessageID, Token, TopicArn, Subject, Message, Timestamp string
	SignatureVersion, Signature, SigningCertURL, SubscribeURL     string
}

func (m *snsMessage) UnmarshalJSON(b []byte) error {
	var raw struct {
		Type, MessageId, Token, TopicArn, Subject, Message, Timestamp string //nolint:revive // SNS's names
		SignatureVersion, Signature, SigningCertURL, SubscribeURL     string
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	*m = snsMessage{Type: raw.Type, MessageID: raw.MessageId, Token: raw.Token, TopicArn: raw.TopicArn,
		Subject: raw.Subject, Message: raw.Message, Timestamp: raw.Timestamp, SignatureVersion: raw.SignatureVersion,
		Signature: raw.Signature, SigningCertURL: raw.SigningCertURL, SubscribeURL: raw.SubscribeURL}
	return nil
}

// snsHost matches the hosts SNS signs from (and its subscribe URLs).
var snsHost = regexp.MustCompile(`^sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$`)

// checkSNSURL refuses any URL that is not https on an SNS host.
func checkSNSURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "https" || u.User != nil || u.Port() != "" || !snsHost.MatchString(u.Hostname()) {
		return fmt.Errorf("%w: %q is not an https URL on an SNS host of amazonaws.com", errHookAuth, raw)
	}
	return nil
}

func (v *SNSVerifier) init() {
	if v.FetchCert == nil {
		v.FetchCert = httpsGet
	}
	if v.Confirm == nil {
		v.Confirm = func(ctx context.Context, u string) error { _, err := httpsGet(ctx, u); return err }
	}
}

func (v *SNSVerifier) confirm(ctx context.Context, u string) error {
	if err := checkSNSURL(u); err != nil {
		return err
	}
	return v.Confirm(ctx, u)
}

// Verify parses and checks one SNS message.
func (v *SNSVerifier) Verify(ctx context.Context, body []byte) (snsMessage, error) {
	var m snsMessage
	if err := json.Unmarshal(body, &m); err != nil {
		return m, fmt.Errorf("%w: SNS body: %v", errHookAuth, err)
	}
	if err := checkSNSURL(m.SigningCertURL); err != nil || !strings.HasSuffix(m.SigningCertURL, ".pem") {
		return m, fmt.Errorf("%w: signing certificate URL %q", errHookAuth, m.SigningCertURL)
	}
	ts, err := time.Parse(time.RFC3339, m.Timestamp)
	if err != nil || v.now().Sub(ts) > time.Hour || ts.Sub(v.now()) > 5*time.Minute {
		return m, fmt.Errorf("%w: SNS timestamp %q is not within the last hour", errHookAuth, m.Timestamp)
	}
	cert, err := v.cert(ctx, m.SigningCertURL)
	if err != nil {
		return m, err
	}
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok || v.now().Before(cert.NotBefore) || v.now().After(cert.NotAfter) {
		return m, fmt.Errorf("%w: SNS certificate not an RSA key valid now", errHookAuth)
	}
	sig, err := base64.StdEncoding.DecodeString(m.Signature)
	if err != nil {
		return m, fmt.Errorf("%w: SNS signature encoding", errHookAuth)
	}
	text := []byte(snsStringToSign(m))
	switch m.SignatureVersion {
	case "1":
		sum := sha1.Sum(text) //nolint:gosec // the algorithm of SignatureVersion 1
		err = rsa.VerifyPKCS1v15(pub, crypto.SHA1, sum[:], sig)
	case "2":
		sum := sha256.Sum256(text)
		err = rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig)
	default:
		err = errors.New("unknown SignatureVersion " + m.SignatureVersion)
	}
	if err != nil {
		return m, fmt.Errorf("%w: SNS signature: %v", errHookAuth, err)
	}
	return m, nil
}

// snsStringToSign is the canonical text SNS signs.
func snsStringToSign(m snsMessage) string {
	var b strings.Builder
	add := func(k, v string) { b.WriteString(k + "\n" + v + "\n") }
	add("Message", m.Message)
	add("MessageId", m.MessageID)
	if m.Type == "Notification" {
		if m.Subject != "" {
			add("Subject", m.Subject)
		}
		add("Timestamp", m.Timestamp)
		add("TopicArn", m.TopicArn)
		add("Type", m.Type)
		return b.String()
	}
	add("SubscribeURL", m.SubscribeURL)
	add("Timestamp", m.Timestamp)
	add("Token", m.Token)
	add("TopicArn", m.TopicArn)
	add("Type", m.Type)
	return b.String()
}

func (v *SNSVerifier) cert(ctx context.Context, u string) (*x509.Certificate, error) {
	v.mu.Lock()
	c := v.certs[u]
	v.mu.Unlock()
	if c != nil {
		return c, nil
	}
	raw, err := v.FetchCert(ctx, u)
	if err != nil {
		return nil, fmt.Errorf("fetching the SNS certificate: %w", err)
	}
	block, _ := pem.Decode(raw)
	if block == nil {
		return nil, fmt.Errorf("%w: no PEM certificate at %s", errHookAuth, u)
	}
	c, err = x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: SNS certificate: %v", errHookAuth, err)
	}
	v.mu.Lock()
	if v.certs == nil || len(v.certs) > 64 {
		v.certs = map[string]*x509.Certificate{}
	}
	v.certs[u] = c
	v.mu.Unlock()
	return c, nil
}

// httpsGet fetches a small document over HTTPS with a timeout.
func httpsGet(ctx context.Context, u string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	return io.ReadAll(io.LimitReader(resp.Body, 64<<10))
}

// decodeBase64 accepts standard base64 with or without padding.
func decodeBase64(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if b, err := base64.StdEncoding.DecodeString(s); err == nil {
		return b, nil
	}
	return base64.RawStdEncoding.DecodeString(s)
}

// ParseSendGridKey reads SendGrid's verification key: base64 of a DER
// (PKIX) ECDSA public key, as its settings page shows it.
func ParseSendGridKey(s string) (*ecdsa.PublicKey, error) {
	der, err := decodeBase64(s)
	if err != nil {
		return nil, fmt.Errorf("not base64: %w", err)
	}
	k, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, err
	}
	ek, ok := k.(*ecdsa.PublicKey)
	if !ok {
		return nil, errors.New("not an ECDSA public key")
	}
	return ek, nil
}

// now is the clock of the checks.
func (v *SNSVerifier) now() time.Time {
	if v.Now != nil {
		return v.Now()
	}
	return time.Now()
}
