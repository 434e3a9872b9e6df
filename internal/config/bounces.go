package config

import (
	"net/mail"
	"strings"
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
}

// validateBounces checks the bounces: section.
func (c *Config) validateBounces(v *validator) {
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
	if b.Listen != "" {
		if b.Address == "" {
			v.addf("bounces.listen", "needs bounces.address: the receiver accepts mail for it only")
		}
		if err := checkListen(b.Listen); err != nil {
			v.wrap("bounces.listen", "\""+b.Listen+"\" is not host:port", err)
		}
	}
}
