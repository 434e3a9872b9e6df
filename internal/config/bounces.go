package config

import (
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"net/mail"
	"net/url"
	"strings"
	"time"
)

// Bounces is where returned mail and complaints come back, and how.
type Bounces struct {
	// Address is the VERP base of the envelope sender: each reader's
	// message goes out from bounces+TOKEN@domain. Empty: no VERP (the
	// envelope sender is smtp.envelope_from or newsletter.from).
	Address string `yaml:"address"`
	// Listen, when set, is the host:port of the inbound SMTP receiver that
	// `digest serve` and `digest daemon` run for the bounce address.
	Listen string `yaml:"listen"`
	// Mailbox, when its URL is set, is an IMAP mailbox that receives
	// returned mail: serve and the daemon poll it.
	Mailbox Mailbox `yaml:"mailbox"`
	// Webhooks are the ESPs' event endpoints /hooks/{provider} on
	// server.listen; a provider is served once its keys are set.
	Webhooks Webhooks `yaml:"webhooks"`
}

// Mailbox is an IMAP mailbox polled for returned mail.
type Mailbox struct {
	URL      string `yaml:"url"` // imaps://host[:port]/MAILBOX
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	// Interval between polls; zero: every 5 minutes.
	Interval time.Duration `yaml:"interval"`
	// MoveTo is the folder handled messages go to; empty: deleted.
	MoveTo             string `yaml:"move_to"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
}

// Webhooks holds each provider's authentication.
type Webhooks struct {
	Postmark struct {
		User     string `yaml:"user"`
		Password string `yaml:"password"`
	} `yaml:"postmark"`
	Mailgun struct {
		SigningKey string `yaml:"signing_key"`
	} `yaml:"mailgun"`
	SendGrid struct {
		// PublicKey is the Event Webhook's verification key, base64 as
		// SendGrid shows it.
		PublicKey string `yaml:"public_key"`
	} `yaml:"sendgrid"`
	SES struct {
		// TopicARN is the SNS topic SES publishes to.
		TopicARN string `yaml:"topic_arn"`
	} `yaml:"ses"`
}

// Environment variables that override the bounce intakes' secrets.
const (
	EnvMailboxPassword  = "DIGEST_BOUNCES_MAILBOX_PASSWORD"
	EnvPostmarkPassword = "DIGEST_POSTMARK_PASSWORD"
	EnvMailgunKey       = "DIGEST_MAILGUN_SIGNING_KEY"
)

// fromEnv applies the non-empty values of the environment variables.
func (b *Bounces) fromEnv(getenv func(string) string) {
	for env, p := range map[string]*string{EnvMailboxPassword: &b.Mailbox.Password,
		EnvPostmarkPassword: &b.Webhooks.Postmark.Password, EnvMailgunKey: &b.Webhooks.Mailgun.SigningKey} {
		if v := getenv(env); v != "" {
			*p = v
		}
	}
}

// redact hides the webhooks' secrets.
func (b *Bounces) redact() {
	for _, p := range []*string{&b.Webhooks.Postmark.Password, &b.Webhooks.Mailgun.SigningKey, &b.Mailbox.Password} {
		if *p != "" {
			*p = "***"
		}
	}
}

// validateBounces checks the bounces: section, and
// delivery.pause_on_bounce_rate.
func (c *Config) validateBounces(v *validator) {
	if r := c.Delivery.PauseOnBounceRate; r < 0 || r >= 1 {
		v.addf("delivery.pause_on_bounce_rate", "must be a share from 0 (off) to below 1, such as 0.1 for 10%%, got %v", r)
	}
	b := c.Bounces
	if b.Address != "" {
		a, err := mail.ParseAddress(b.Address)
		switch {
		case err != nil || a.Name != "" || a.Address != strings.TrimSpace(b.Address):
			v.addf("bounces.address", "%q is not a bare email address such as bounces@news.example.org", b.Address)
		case strings.Contains(a.Address[:strings.LastIndexByte(a.Address, '@')], "+"):
			v.addf("bounces.address", "%q must not contain '+': the VERP token goes after it", b.Address)
		}
	}
	validateMailbox(v, b.Mailbox)
	validateWebhooks(v, b.Webhooks)
	if b.Listen != "" {
		if b.Address == "" {
			v.addf("bounces.listen", "needs bounces.address: the receiver accepts mail for it only")
		}
		if err := checkListen(b.Listen); err != nil {
			v.wrap("bounces.listen", "\""+b.Listen+"\" is not host:port", err)
		}
	}
}

// validateMailbox checks bounces.mailbox.
func validateMailbox(v *validator, m Mailbox) {
	if m.URL == "" {
		return
	}
	u, err := url.Parse(m.URL)
	if err != nil || u.Scheme != "imaps" || u.Hostname() == "" {
		v.addf("bounces.mailbox.url", "%q is not imaps://host[:port]/MAILBOX (TLS is required)", m.URL)
	}
	if m.Username == "" || m.Password == "" {
		v.addf("bounces.mailbox", "username and password are required with url")
	}
	if m.Interval != 0 && m.Interval < 30*time.Second {
		v.addf("bounces.mailbox.interval", "must be at least 30s, got %s", m.Interval)
	}
}

// validateWebhooks checks bounces.webhooks.
func validateWebhooks(v *validator, w Webhooks) {
	if (w.Postmark.User == "") != (w.Postmark.Password == "") {
		v.addf("bounces.webhooks.postmark", "set both user and password (HTTP basic auth), or neither")
	}
	if k := w.SendGrid.PublicKey; k != "" {
		der, err := base64.StdEncoding.DecodeString(strings.TrimSpace(k))
		if err == nil {
			var pub any
			if pub, err = x509.ParsePKIXPublicKey(der); err == nil {
				if _, ok := pub.(*ecdsa.PublicKey); !ok {
					err = errors.New("not an ECDSA key")
				}
			}
		}
		if err != nil {
			v.wrap("bounces.webhooks.sendgrid.public_key", "is not SendGrid's verification key (base64 of an ECDSA public key)", err)
		}
	}
	if a := w.SES.TopicARN; a != "" && !strings.HasPrefix(a, "arn:aws:sns:") && !strings.HasPrefix(a, "arn:aws-cn:sns:") {
		v.addf("bounces.webhooks.ses.topic_arn", "%q is not an SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:NAME)", a)
	}
}
