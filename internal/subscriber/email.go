package subscriber

import (
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Rules are the checks an address must pass beyond its syntax. The zero
// value is the strict default.
type Rules struct {
	// AllowDotlessDomain accepts domains without a dot (user@localhost,
	// user@intranet), which are not deliverable on the internet but are on
	// some private networks (config newsletter.allow_dotless_domains).
	AllowDotlessDomain bool
}

// NormalizeEmail checks s with the default (strict) rules; see
// [Rules.NormalizeEmail].
func NormalizeEmail(s string) (string, error) { return Rules{}.NormalizeEmail(s) }

// NormalizeEmail trims s and checks that it is one bare address
// (local@domain.example: no display name, angle brackets, comment or
// whitespace) whose domain has a dot unless r allows dotless ones. It
// returns the address as given, case preserved: the local part is
// case-sensitive in principle, so matching uses [EmailKey] instead of
// rewriting what was typed.
//
// Its errors quote the address and say in plain words what is wrong
// ("nothing after the @", "the domain has two dots in a row"), since they
// are shown to people fixing a CSV file or typing into a form.
func (r Rules) NormalizeEmail(s string) (string, error) {
	addr := strings.TrimSpace(s)
	if addr == "" {
		return "", errors.New("empty email address")
	}
	if err := r.check(addr); err != nil {
		return "", &AddressError{Address: addr, Err: err}
	}
	return addr, nil
}

// AddressError is an address that [Rules.NormalizeEmail] refuses, with the
// reason (which may quote a part of the address, such as its domain).
type AddressError struct {
	Address string
	Err     error
}

func (e *AddressError) Error() string { return fmt.Sprintf("email address %q: %v", e.Address, e.Err) }

// Unwrap returns the reason.
func (e *AddressError) Unwrap() error { return e.Err }

// ParseMailbox accepts a bare address or a mailbox with a display name
// ("Carol <carol@example.org>", as mail clients copy it) and returns the
// address and the name (empty for a bare address).
func (r Rules) ParseMailbox(s string) (addr, name string, err error) {
	s = strings.TrimSpace(s)
	i := strings.LastIndexByte(s, '<')
	if i < 0 || !strings.HasSuffix(s, ">") {
		addr, err = r.NormalizeEmail(s)
		return addr, "", err
	}
	if addr, err = r.NormalizeEmail(s[i+1 : len(s)-1]); err != nil {
		return "", "", err
	}
	if p, perr := mail.ParseAddress(s); perr == nil {
		name = p.Name // unquoted, RFC 2047 decoded
	} else {
		name = strings.Trim(strings.TrimSpace(s[:i]), `"`)
	}
	return addr, strings.TrimSpace(name), nil
}

// Limits of RFC 5321 §4.5.3.1.
const (
	maxLocal   = 64
	maxAddress = 254
	maxLabel   = 63
)

func (r Rules) check(addr string) error {
	if strings.ContainsRune(addr, '<') || strings.ContainsRune(addr, '>') {
		if i := strings.IndexByte(addr, '<'); i > 0 {
			return errors.New("write just the address, without a name or angle brackets; a name goes in the name column")
		}
		return errors.New("write just the address, without angle brackets")
	}
	if i := strings.IndexFunc(addr, unicode.IsSpace); i >= 0 {
		return errors.New("contains a space")
	}
	if strings.ContainsAny(addr, ",;") {
		return errors.New("contains a comma or semicolon: give one address per row")
	}
	if !utf8.ValidString(addr) {
		return errors.New("is not valid UTF-8 text")
	}
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return errors.New("has no @ (want an address such as user@example.org)")
	}
	local, domain := addr[:at], addr[at+1:]
	switch {
	case local == "" && domain == "":
		return errors.New("nothing before or after the @")
	case local == "":
		return errors.New("nothing before the @")
	case domain == "":
		return errors.New("nothing after the @ (the domain, such as example.org, is missing)")
	}
	if err := checkLocal(local); err != nil {
		return err
	}
	if err := r.checkDomain(domain); err != nil {
		return err
	}
	if len(addr) > maxAddress {
		return fmt.Errorf("is %d characters long, more than the %d an address can have", len(addr), maxAddress)
	}
	// The message builder parses addresses with net/mail: whatever passes
	// here must pass there too.
	parsed, err := mail.ParseAddress(addr)
	if err != nil || parsed.Address != addr {
		return errors.New("is not a valid email address")
	}
	return nil
}

// checkLocal accepts a dot-atom local part (RFC 5322 atext, plus any
// non-ASCII letter for internationalised addresses). Quoted local parts are
// refused: they are legal but nearly always a copy-paste accident.
func checkLocal(local string) error {
	if len(local) > maxLocal {
		return fmt.Errorf("the part before the @ is %d characters long, more than %d", len(local), maxLocal)
	}
	if strings.HasPrefix(local, ".") || strings.HasSuffix(local, ".") {
		return errors.New("the part before the @ starts or ends with a dot")
	}
	if strings.Contains(local, "..") {
		return errors.New("the part before the @ has two dots in a row")
	}
	for _, c := range local {
		if c >= utf8.RuneSelf {
			if !unicode.IsLetter(c) && !unicode.IsDigit(c) && !unicode.IsMark(c) {
				return fmt.Errorf("contains %q, which an address cannot have", c)
			}
			continue
		}
		if !isAtext(byte(c)) && c != '.' {
			return badChar(c)
		}
	}
	return nil
}

func badChar(c rune) error {
	switch c {
	case '@':
		return errors.New("has more than one @")
	case '"':
		return errors.New("contains a quote (\"): write the address without quotes")
	}
	if c < 0x20 || c == 0x7f {
		return errors.New("contains a control character")
	}
	return fmt.Errorf("contains %q, which an address cannot have", c)
}

func isAtext(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0
}

// checkDomain accepts a host name of letter-digit-hyphen labels (or
// non-ASCII labels, for internationalised domains).
func (r Rules) checkDomain(domain string) error {
	if strings.HasPrefix(domain, "[") {
		return fmt.Errorf("the domain %s is an IP address; use a domain name", domain)
	}
	if strings.HasPrefix(domain, ".") || strings.HasSuffix(domain, ".") {
		return fmt.Errorf("the domain %q starts or ends with a dot", domain)
	}
	if strings.Contains(domain, "..") {
		return fmt.Errorf("the domain %q has two dots in a row", domain)
	}
	labels := strings.Split(domain, ".")
	for _, l := range labels {
		if err := checkLabel(domain, l); err != nil {
			return err
		}
	}
	if len(labels) == 1 && !r.AllowDotlessDomain {
		return fmt.Errorf("the domain %q has no dot, so mail to it cannot be delivered over the internet "+
			"(set newsletter.allow_dotless_domains: true to accept such addresses)", domain)
	}
	if allDigits(labels[len(labels)-1]) {
		return fmt.Errorf("the domain %s looks like an IP address; use a domain name", domain)
	}
	return nil
}

// checkLabel checks one dot-separated part l of domain.
func checkLabel(domain, l string) error {
	if len(l) > maxLabel {
		return fmt.Errorf("the domain %q has a part longer than %d characters", domain, maxLabel)
	}
	if strings.HasPrefix(l, "-") || strings.HasSuffix(l, "-") {
		return fmt.Errorf("the domain %q has a part that starts or ends with a hyphen", domain)
	}
	for _, c := range l {
		if !labelChar(c) {
			if c == '@' {
				return errors.New("has more than one @")
			}
			return fmt.Errorf("the domain %q contains %q, which a domain name cannot have", domain, c)
		}
	}
	return nil
}

// labelChar tells the characters of a domain name's label: ASCII letters,
// digits and '-', and non-ASCII letters, digits and marks (IDN).
func labelChar(c rune) bool {
	if c >= utf8.RuneSelf {
		return unicode.IsLetter(c) || unicode.IsDigit(c) || unicode.IsMark(c)
	}
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-'
}

func allDigits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}

// EmailKey is the case-insensitive identity of an address: two addresses with
// the same key are the same subscriber.
func EmailKey(email string) string {
	return strings.ToLower(strings.TrimSpace(email))
}
