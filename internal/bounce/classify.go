package bounce

import (
	"regexp"
	"strings"
)

var (
	// quotaRe: a full mailbox is the reader's passing state, whatever the
	// class of the code.
	quotaRe = regexp.MustCompile(`(?i)mailbox (is )?full|over ?quota|quota (exceeded|exceed)|exceeded (the )?(storage|quota)|insufficient (system )?storage|mailbox size limit|out of storage`)
	// blockRe: the receiver refuses the sender, not the address.
	blockRe = regexp.MustCompile(`(?i)spamhaus|block ?list|black ?list|blocked|listed (in|on|at)|\brbl\b|reputation|spam|\bpolicy\b|dmarc|\bspf\b|dkim|unauthenticated|not authori[sz]ed to send|too many (connections|messages)|rate limit`)
	// unknownRe: the address does not exist.
	unknownRe = regexp.MustCompile(`(?i)user unknown|unknown user|no such (user|mailbox|recipient|domain|address)|does ?n[o']t exist|not exist|no mailbox|invalid (recipient|mailbox|address)|unknown (recipient|mailbox|address)|recipient (address )?rejected|address rejected|mailbox (unavailable|not found|disabled)|account (is )?(disabled|deactivated|inactive|suspended)|domain (not found|does not exist)|host (not found|unknown)|doesn't have a .{1,40} account|no longer (active|available)|no mailbox here|unrouteable|unroutable|address not found`)
)

// classify turns a DSN's action, status code and diagnostic text into a
// kind. The status code is trusted before the words, the words before
// the bare reply code.
func classify(action, status, diag string) Kind {
	switch strings.ToLower(strings.TrimSpace(action)) {
	case "delayed":
		return Delayed
	case "delivered", "relayed", "expanded":
		return Delivered
	}
	if k := byStatus(status, diag); k != Unmatched {
		return k
	}
	return byWords(status, diag)
}

// byStatus classifies by the enhanced status code, or gives Unmatched.
func byStatus(status, diag string) Kind {
	class, subject, detail := splitStatus(status)
	switch {
	case subject == "2" && detail == "2", quotaRe.MatchString(diag):
		return Soft
	case class == "4":
		return Soft
	case class == "5" && (subject == "1" || status == "5.2.1" || status == "5.4.4"):
		return Hard
	case class == "5" && subject == "7":
		return SenderBlock
	case class == "2":
		return Delivered
	}
	return Unmatched
}

// byWords classifies by the diagnostic's words, then its reply code.
func byWords(status, diag string) Kind {
	class, _, _ := splitStatus(status)
	basic := basicCode(diag)
	switch {
	case unknownRe.MatchString(diag) && (class == "5" || basic == "" || basic[0] == '5'):
		return Hard
	case blockRe.MatchString(diag):
		return SenderBlock
	case strings.HasPrefix(basic, "4"):
		return Soft
	case class == "5" || strings.HasPrefix(basic, "5"):
		// A permanent failure whose cause nothing names: scored like a
		// soft one rather than dropping the reader on a guess.
		return Soft
	}
	return Unmatched
}

// splitStatus splits "5.1.1" into its three fields; anything else gives
// empty fields.
func splitStatus(s string) (class, subject, detail string) {
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return "", "", ""
	}
	return parts[0], parts[1], parts[2]
}

var (
	statusRe = regexp.MustCompile(`\b[245]\.\d{1,3}\.\d{1,3}\b`)
	basicRe  = regexp.MustCompile(`\b[245][0-5]\d\b`)
)

// findStatus returns the first enhanced status code in s that is not part
// of a longer dotted number (an IP address, a version).
func findStatus(s string) string {
	for _, loc := range statusRe.FindAllStringIndex(s, 8) {
		if loc[0] > 0 && (s[loc[0]-1] == '.' || isDigit(s[loc[0]-1])) {
			continue
		}
		if loc[1] < len(s) && s[loc[1]] == '.' && loc[1]+1 < len(s) && isDigit(s[loc[1]+1]) {
			continue
		}
		return s[loc[0]:loc[1]]
	}
	return ""
}

// basicCode returns the first SMTP reply code in s ("550").
func basicCode(s string) string {
	for _, loc := range basicRe.FindAllStringIndex(s, 8) {
		if loc[0] > 0 && (s[loc[0]-1] == '.' || s[loc[0]-1] == '#') {
			continue
		}
		if loc[1] < len(s) && s[loc[1]] == '.' {
			continue
		}
		return s[loc[0]:loc[1]]
	}
	return ""
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// oneLine collapses s to one line of at most maxDiagnostic bytes, cut on a
// rune boundary.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) <= maxDiagnostic {
		return s
	}
	cut := maxDiagnostic
	for cut > 0 && s[cut]&0xc0 == 0x80 {
		cut--
	}
	return s[:cut] + "…"
}
