package bounce

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// The ESPs' event formats. Each parser turns one webhook body into events
// whose Source is the provider, whose Fingerprint is the provider's event
// id (a replay is the same event), whose tokens hold what the event
// carries of ours (the VERP envelope sender, our Message-ID) and whose
// Recipient is the address the ESP names: the webhook is authenticated,
// so Authenticated is set and the address may name the reader when no
// token does.

// maxESPEvents bounds the events taken from one webhook call.
const maxESPEvents = 1000

// espEvent starts an event of a provider.
func (p *Parser) espEvent(source, id string, kind Kind, rcpt string, body []byte) Event {
	if id == "" {
		sum := sha256.Sum256(append(append([]byte(rcpt), 0), body...))
		id = "sha256:" + hex.EncodeToString(sum[:])
	}
	ev := Event{Source: source, Fingerprint: source + ":" + id, Authenticated: true}
	ev.Kind, ev.Format, ev.Recipient = kind, source, cleanAddr(rcpt)
	return ev
}

// addTokens adds the candidates found in s (a header value, an envelope
// sender).
func (p *Parser) addTokens(ev *Event, s ...string) {
	w := &walker{p: p, seen: map[string]bool{}, tokens: ev.Tokens}
	for _, v := range s {
		if t := p.VERPToken(v); t != "" {
			w.add(&w.tokens.VERP, t)
		}
		w.scan([]byte(v))
	}
	ev.Tokens = w.tokens
}

// Postmark parses a Postmark webhook (bounce, spam complaint or delivery).
func (p *Parser) Postmark(body []byte) ([]Event, error) {
	var m struct {
		RecordType, Type, Email, Recipient, Description, Details, MessageID string
		ID                                                                  json.Number
		Metadata                                                            map[string]string
	}
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, fmt.Errorf("postmark: %w", err)
	}
	var kind Kind
	switch m.RecordType + "/" + m.Type {
	case "Bounce/HardBounce", "Bounce/BadEmailAddress":
		kind = Hard
	case "Bounce/SoftBounce", "Bounce/Transient", "Bounce/DnsError":
		kind = Soft
	case "Bounce/Blocked", "Bounce/DMARCPolicy", "Bounce/SpamNotification":
		kind = SenderBlock
	case "Bounce/AutoResponder":
		kind = AutoReply
	case "SpamComplaint/SpamComplaint", "Bounce/SpamComplaint":
		kind = Complaint
	default:
		kind = Unmatched
	}
	rcpt := m.Email
	if m.RecordType == "Delivery" {
		kind, rcpt = Delivered, m.Recipient
	}
	id := m.ID.String()
	ev := p.espEvent("postmark", m.RecordType+":"+id, kind, rcpt, body)
	ev.Diagnostic = oneLine(m.Description + " " + m.Details)
	ev.Status = findStatus(m.Details)
	if kind == Unmatched {
		ev.Reason = "postmark record " + m.RecordType + "/" + m.Type + " is not acted on"
	}
	p.addTokens(&ev, m.Metadata["message-id"])
	return []Event{ev}, nil
}

// Mailgun parses the "event-data" of a Mailgun webhook (its signature is
// checked by the caller).
func (p *Parser) Mailgun(eventData json.RawMessage) ([]Event, error) {
	var m struct {
		Event, Severity, Recipient, ID, Reason string
		Delivery                               struct {
			Code        int    `json:"code"`
			Message     string `json:"message"`
			Description string `json:"description"`
		} `json:"delivery-status"`
		Envelope struct {
			Sender string `json:"sender"`
		} `json:"envelope"`
		Message struct {
			Headers map[string]string `json:"headers"`
		} `json:"message"`
	}
	if err := json.Unmarshal(eventData, &m); err != nil {
		return nil, fmt.Errorf("mailgun: %w", err)
	}
	diag := strings.TrimSpace(m.Delivery.Message + " " + m.Delivery.Description)
	status := findStatus(diag)
	var kind Kind
	switch {
	case m.Event == "failed" && m.Severity == "temporary":
		kind = Delayed // Mailgun retries by itself
	case m.Event == "failed":
		kind = classify("failed", status, strconv.Itoa(m.Delivery.Code)+" "+diag)
		if kind == Unmatched {
			kind = Soft
		}
	case m.Event == "complained":
		kind = Complaint
	case m.Event == "delivered":
		kind = Delivered
	default:
		kind = Unmatched
	}
	ev := p.espEvent("mailgun", m.ID, kind, m.Recipient, eventData)
	ev.Status, ev.Diagnostic = status, oneLine(diag)
	if kind == Unmatched {
		ev.Reason = "mailgun event " + m.Event + " is not acted on"
	}
	p.addTokens(&ev, m.Envelope.Sender, m.Message.Headers["message-id"])
	return []Event{ev}, nil
}

// SendGrid parses a SendGrid Event Webhook body (a JSON array).
func (p *Parser) SendGrid(body []byte) ([]Event, error) {
	var list []struct {
		Email, Event, Type, Status, Reason, Response string
		ID                                           string `json:"sg_event_id"`
		SMTPID                                       string `json:"smtp-id"`
	}
	if err := json.Unmarshal(body, &list); err != nil {
		return nil, fmt.Errorf("sendgrid: %w", err)
	}
	if len(list) > maxESPEvents {
		return nil, fmt.Errorf("sendgrid: %d events in one call, more than %d", len(list), maxESPEvents)
	}
	var out []Event
	for _, m := range list {
		diag := strings.TrimSpace(m.Reason + " " + m.Response)
		status := findStatus(m.Status + " " + diag)
		var kind Kind
		switch m.Event {
		case "bounce":
			if kind = classify("failed", status, diag); kind == Unmatched {
				kind = Soft
			}
		case "deferred":
			kind = Delayed
		case "spamreport":
			kind = Complaint
		case "delivered":
			kind = Delivered
		default: // processed, dropped, open, click, unsubscribe…
			kind = Unmatched
		}
		ev := p.espEvent("sendgrid", m.ID, kind, m.Email, []byte(m.Event+m.SMTPID+m.Status))
		ev.Status, ev.Diagnostic = status, oneLine(diag)
		if kind == Unmatched {
			ev.Reason = "sendgrid event " + m.Event + " is not acted on"
		}
		p.addTokens(&ev, m.SMTPID)
		out = append(out, ev)
	}
	return out, nil
}

// SES parses an Amazon SES notification (the Message of an SNS
// notification): a bounce, complaint or delivery, in the notification or
// the event-publishing form.
func (p *Parser) SES(message []byte, snsID string) ([]Event, error) {
	type rcpt struct {
		EmailAddress   string `json:"emailAddress"`
		Status         string `json:"status"`
		DiagnosticCode string `json:"diagnosticCode"`
	}
	var m struct {
		NotificationType string `json:"notificationType"`
		EventType        string `json:"eventType"`
		Bounce           struct {
			BounceType, BounceSubType string
			Recipients                []rcpt `json:"bouncedRecipients"`
		} `json:"bounce"`
		Complaint struct {
			Recipients []rcpt `json:"complainedRecipients"`
		} `json:"complaint"`
		Delivery struct {
			Recipients []string `json:"recipients"`
		} `json:"delivery"`
		Mail struct {
			Source  string `json:"source"`
			Headers []struct{ Name, Value string }
		} `json:"mail"`
	}
	if err := json.Unmarshal(message, &m); err != nil {
		return nil, fmt.Errorf("ses: %w", err)
	}
	typ := m.NotificationType
	if typ == "" {
		typ = m.EventType
	}
	var mid string
	for _, h := range m.Mail.Headers {
		if strings.EqualFold(h.Name, "Message-ID") {
			mid = h.Value
		}
	}
	var out []Event
	add := func(kind Kind, r rcpt) {
		if len(out) >= maxESPEvents {
			return
		}
		ev := p.espEvent("ses", snsID+":"+r.EmailAddress, kind, r.EmailAddress, message)
		ev.Status = findStatus(r.Status)
		ev.Diagnostic = oneLine(afterType(r.DiagnosticCode))
		if kind == Unmatched {
			ev.Reason = "ses " + typ + " " + m.Bounce.BounceType + " is not acted on"
		}
		p.addTokens(&ev, m.Mail.Source, mid)
		out = append(out, ev)
	}
	switch typ {
	case "Bounce":
		for _, r := range m.Bounce.Recipients {
			add(sesBounceKind(m.Bounce.BounceType, m.Bounce.BounceSubType, r.Status, r.DiagnosticCode), r)
		}
	case "Complaint":
		for _, r := range m.Complaint.Recipients {
			add(Complaint, r)
		}
	case "Delivery":
		for _, r := range m.Delivery.Recipients {
			add(Delivered, rcpt{EmailAddress: r})
		}
	default:
		add(Unmatched, rcpt{})
	}
	return out, nil
}

func sesBounceKind(typ, sub, status, diag string) Kind {
	switch {
	case typ == "Transient" && (sub == "MailboxFull" || sub == "General" || sub == "MessageTooLarge" || sub == "ContentRejected"):
		return Soft
	case typ == "Transient":
		return Soft
	case typ == "Permanent" && sub == "Suppressed", typ == "Permanent" && sub == "OnAccountSuppressionList":
		return Hard // SES refuses the address: it bounced before
	case typ == "Permanent":
		if k := classify("failed", findStatus(status), diag); k != Unmatched && k != Delivered {
			return k
		}
		return Hard
	}
	return Unmatched // Undetermined
}
