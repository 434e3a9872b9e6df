package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"strings"
	"testing"
)

func sendGridKey(t *testing.T) string {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(der)
}

func TestValidateBounces(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		change func(*Bounces)
		want   string // "" valid
	}{
		{"unset", func(*Bounces) {}, ""},
		{"address and listen", func(b *Bounces) { b.Address, b.Listen = "bounces@news.example.org", "127.0.0.1:2526" }, ""},
		{"display name", func(b *Bounces) { b.Address = "Bounces <bounces@news.example.org>" }, "bounces.address"},
		{"plus", func(b *Bounces) { b.Address = "bounces+x@news.example.org" }, "must not contain '+'"},
		{"not an address", func(b *Bounces) { b.Address = "bounces" }, "bounces.address"},
		{"listen without address", func(b *Bounces) { b.Listen = "127.0.0.1:2526" }, "needs bounces.address"},
		{"bad listen", func(b *Bounces) { b.Address, b.Listen = "b@example.org", "2526" }, "bounces.listen"},
		{"postmark user only", func(b *Bounces) { b.Webhooks.Postmark.User = "u" }, "bounces.webhooks.postmark"},
		{"sendgrid key", func(b *Bounces) {
			b.Webhooks.SendGrid.PublicKey = sendGridKey(t)
		}, ""},
		{"sendgrid garbage", func(b *Bounces) { b.Webhooks.SendGrid.PublicKey = "not a key" }, "bounces.webhooks.sendgrid.public_key"},
		{"mailbox", func(b *Bounces) {
			b.Mailbox.URL, b.Mailbox.Username, b.Mailbox.Password = "imaps://mail.example.org/INBOX", "u", "p"
		}, ""},
		{"mailbox without TLS", func(b *Bounces) {
			b.Mailbox.URL, b.Mailbox.Username, b.Mailbox.Password = "imap://mail.example.org/INBOX", "u", "p"
		}, "bounces.mailbox.url"},
		{"mailbox without login", func(b *Bounces) { b.Mailbox.URL = "imaps://mail.example.org/INBOX" }, "username and password"},
		{"ses arn", func(b *Bounces) { b.Webhooks.SES.TopicARN = "digest" }, "bounces.webhooks.ses.topic_arn"},
	}
	for _, tt := range tests {
		c := valid()
		tt.change(&c.Bounces)
		err := c.Validate()
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%s: error %v, want one containing %q", tt.name, err, tt.want)
		}
	}
}

func TestBouncesSecretsFromEnv(t *testing.T) {
	t.Parallel()
	var b Bounces
	b.Webhooks.Postmark.Password = "from-file"
	b.fromEnv(func(k string) string {
		return map[string]string{EnvMailboxPassword: "imap-pw", EnvMailgunKey: "mg-key"}[k]
	})
	if b.Mailbox.Password != "imap-pw" || b.Webhooks.Mailgun.SigningKey != "mg-key" || b.Webhooks.Postmark.Password != "from-file" {
		t.Errorf("after fromEnv: %+v", b)
	}
	b.redact()
	if b.Mailbox.Password != "***" || b.Webhooks.Mailgun.SigningKey != "***" || b.Webhooks.Postmark.Password != "***" {
		t.Errorf("after redact: %+v", b)
	}
}
