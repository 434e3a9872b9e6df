package bounce

import (
	"net/textproto"
	"strings"
)

// fieldGroups parses the body of a message/delivery-status or
// message/feedback-report part: groups of "Name: value" fields (with
// folded continuation lines) separated by blank lines. Names are
// lower-cased.
func fieldGroups(body []byte) []map[string]string {
	var groups []map[string]string
	cur := map[string]string{}
	last := ""
	flush := func() {
		if len(cur) > 0 {
			groups = append(groups, cur)
		}
		cur, last = map[string]string{}, ""
	}
	for _, line := range strings.Split(strings.ReplaceAll(string(body), "\r\n", "\n"), "\n") {
		switch {
		case strings.TrimSpace(line) == "":
			flush()
		case line[0] == ' ' || line[0] == '\t':
			if last != "" {
				cur[last] += " " + strings.TrimSpace(line)
			}
		default:
			name, value, ok := strings.Cut(line, ":")
			if !ok {
				continue
			}
			last = strings.ToLower(strings.TrimSpace(name))
			if _, dup := cur[last]; !dup {
				cur[last] = strings.TrimSpace(value)
			}
		}
		if len(groups) > maxParts {
			break
		}
	}
	flush()
	return groups
}

// actionRank orders per-recipient groups: a failure says most.
func actionRank(a string) int {
	switch strings.ToLower(a) {
	case "failed":
		return 3
	case "delayed":
		return 2
	case "delivered", "relayed", "expanded":
		return 1
	}
	return 0
}

// dsnVerdict reads an RFC 3464 report: the per-recipient group whose
// Action says most, its Status, Diagnostic-Code and Final-Recipient.
func dsnVerdict(body []byte) Verdict {
	groups := fieldGroups(body)
	var best map[string]string
	for _, g := range groups {
		if _, ok := g["final-recipient"]; !ok {
			if _, ok := g["action"]; !ok {
				continue // the per-message group
			}
		}
		if best == nil || actionRank(g["action"]) > actionRank(best["action"]) {
			best = g
		}
	}
	if best == nil {
		return Verdict{Kind: Unmatched, Format: "dsn", Reason: "delivery report without a recipient"}
	}
	diag := afterType(best["diagnostic-code"])
	status := findStatus(best["status"])
	if status == "" {
		status = findStatus(diag)
	}
	rcpt := afterType(best["final-recipient"])
	if rcpt == "" {
		rcpt = afterType(best["original-recipient"])
	}
	v := Verdict{Status: status, Diagnostic: oneLine(diag), Recipient: cleanAddr(rcpt)}
	v.Kind = classify(best["action"], status, diag)
	if v.Kind == Unmatched {
		v.Reason = "delivery report without a status this program understands"
	}
	return v
}

// afterType drops the "rfc822;" or "smtp;" type of a DSN field.
func afterType(s string) string {
	if _, v, ok := strings.Cut(s, ";"); ok {
		return strings.TrimSpace(v)
	}
	return strings.TrimSpace(s)
}

func cleanAddr(s string) string {
	s = strings.TrimSpace(strings.Trim(strings.TrimSpace(s), "<>"))
	if len(s) > 254 {
		return s[:254]
	}
	return s
}

// dsnFormat names who sent a standard report, for the operator.
func dsnFormat(h textproto.MIMEHeader) string {
	from := strings.ToLower(h.Get("From"))
	switch {
	case strings.Contains(from, "googlemail.com") || strings.Contains(from, "@google.com") || strings.Contains(from, "gmail.com"):
		return "gmail"
	case h.Get("X-MS-Exchange-Message-Is-Ndr") != "" || strings.Contains(from, "outlook.com") || strings.Contains(from, "microsoft"):
		return "exchange"
	case strings.Contains(from, "yahoo"):
		return "yahoo"
	}
	return "dsn"
}

// arfVerdict reads an RFC 5965 feedback report.
func arfVerdict(body []byte) Verdict {
	v := Verdict{Format: "arf"}
	groups := fieldGroups(body)
	g := map[string]string{}
	if len(groups) > 0 {
		g = groups[0]
	}
	ft := strings.ToLower(strings.TrimSpace(g["feedback-type"]))
	v.Recipient = cleanAddr(g["original-rcpt-to"])
	v.Diagnostic = oneLine(strings.TrimSpace("feedback-type " + ft + " " + g["user-agent"]))
	switch ft {
	case "abuse", "fraud", "virus", "other", "":
		v.Kind = Complaint
	case "not-spam":
		v.Kind, v.Reason = Unmatched, "a not-spam report: nothing to do"
	default: // auth-failure (RFC 6591) and the unknown: about the sender
		v.Kind, v.Reason = Unmatched, "feedback type "+ft+" is not a reader's complaint"
	}
	return v
}
