package bounce

import (
	"net/textproto"
	"regexp"
	"strings"
)

var (
	daemonRe = regexp.MustCompile(`(?i)mailer-daemon|postmaster|mail delivery (system|subsystem)|mail administrator`)
	// bounceSubjectRe: the subjects of MTAs' failure and delay notices.
	bounceSubjectRe = regexp.MustCompile(`(?i)undeliver|delivery (status notification|failure|has failed|failed|problem)|failure notice|mail delivery failed|returned mail|returned to sender|non[- ]?delivery|could not be delivered|warning: message .* delayed|delayed mail`)
	// copyRe marks where an MTA starts quoting the original message.
	copyRe      = regexp.MustCompile(`(?im)^.*(below this line is a copy|this is a copy of the message|original message follows|-+ ?original message( headers)? ?-+|the header of the original message|a copy of the original message|undelivered message headers|message headers follow).*$`)
	delayRe     = regexp.MustCompile(`(?i)\bdelayed\b|not yet been delivered|will (continue to )?(retry|try)|still trying|is still being retried`)
	permanentRe = regexp.MustCompile(`(?i)permanent (error|failure)|given up|could not be delivered|wasn't able to deliver|unable to deliver|did not reach|delivery has failed|failed permanently`)
	addrRe      = regexp.MustCompile(`<?([A-Za-z0-9.!#$%&'*+/=?^_{|}~-]{1,64}@[A-Za-z0-9-]{1,63}(\.[A-Za-z0-9-]{1,63})+)>?`)
	autoSubjRe  = regexp.MustCompile(`(?i)^\s*(out of (the )?office|automatic reply|auto(matic)?[- ]?(reply|response)|auto:|autoreply|vacation|on vacation|away from|abwesenheit|r[ée]ponse automatique|respuesta autom[áa]tica|absence)`)
)

// looksLikeBounce reports a notice from a mail system about a failure or
// delay. Auto-Submitted does not tell: MTAs set it on bounces too.
func looksLikeBounce(h textproto.MIMEHeader, texts []string) bool {
	if h.Get("X-Failed-Recipients") != "" {
		return true
	}
	from := h.Get("From")
	subj := h.Get("Subject")
	if bounceSubjectRe.MatchString(subj) {
		return true
	}
	if daemonRe.MatchString(from) && len(texts) > 0 {
		region := diagnosticRegion(texts[0])
		return permanentRe.MatchString(region) || delayRe.MatchString(region) || findStatus(region) != ""
	}
	return false
}

// diagnosticRegion is the text before the quoted original message.
func diagnosticRegion(text string) string {
	if loc := copyRe.FindStringIndex(text); loc != nil {
		return text[:loc[0]]
	}
	if len(text) > 8<<10 {
		return text[:8<<10]
	}
	return text
}

// textVerdict reads the plain-text notices of MTAs that send no DSN.
func textVerdict(h textproto.MIMEHeader, text string) Verdict {
	region := diagnosticRegion(text)
	v := Verdict{Format: textFormat(region)}
	if r := h.Get("X-Failed-Recipients"); r != "" {
		v.Recipient = cleanAddr(strings.Split(r, ",")[0])
	} else if m := addrRe.FindStringSubmatch(region); m != nil {
		v.Recipient = m[1]
	}
	v.Status = findStatus(region)
	diag := diagnosticLine(region, v.Status)
	v.Diagnostic = oneLine(diag)
	subj := h.Get("Subject")
	if !permanentRe.MatchString(region) && (delayRe.MatchString(subj) || delayRe.MatchString(region)) {
		v.Kind = Delayed
		return v
	}
	v.Kind = classify("", v.Status, diag)
	if v.Kind == Unmatched && permanentRe.MatchString(region) {
		v.Kind = Soft // a permanent failure whose cause nothing names
	}
	if v.Kind == Unmatched {
		v.Reason = "a delivery notice without a status this program understands"
	}
	return v
}

// diagnosticLine is the line that carries the status (or reply) code,
// with the next one when it continues it, else the first line that names
// a known cause.
func diagnosticLine(region, status string) string {
	lines := strings.Split(strings.ReplaceAll(region, "\r\n", "\n"), "\n")
	for i, l := range lines {
		if (status != "" && strings.Contains(l, status)) || (status == "" && basicCode(l) != "") {
			out := strings.TrimSpace(l)
			if i+1 < len(lines) && strings.HasPrefix(lines[i+1], "    ") && len(out) < 120 {
				out += " " + strings.TrimSpace(lines[i+1])
			}
			return out
		}
	}
	for _, l := range lines {
		if unknownRe.MatchString(l) || quotaRe.MatchString(l) || blockRe.MatchString(l) {
			return strings.TrimSpace(l)
		}
	}
	return ""
}

// textFormat names the MTA by its documented wording.
func textFormat(region string) string {
	switch {
	case strings.Contains(region, "This is the qmail-send program"):
		return "qmail"
	case strings.Contains(region, "This message was created automatically by mail delivery software"):
		return "exim"
	case strings.Contains(region, "Sorry, we were unable to deliver your message"):
		return "yahoo"
	case strings.Contains(region, "did not reach some or all of the intended recipients"),
		strings.Contains(region, "Delivery has failed to these recipients"):
		return "exchange"
	}
	return "text"
}

// isAutoReply reports an out-of-office or vacation reply (checked only
// after the message was found not to be a bounce).
func isAutoReply(h textproto.MIMEHeader) bool {
	as := strings.ToLower(h.Get("Auto-Submitted"))
	prec := strings.ToLower(h.Get("Precedence") + " " + h.Get("X-Precedence"))
	return strings.HasPrefix(as, "auto-replied") || h.Get("X-Autoreply") != "" || h.Get("X-Autorespond") != "" ||
		strings.Contains(prec, "auto_reply") || autoSubjRe.MatchString(h.Get("Subject"))
}
