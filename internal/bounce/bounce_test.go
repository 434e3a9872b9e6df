package bounce

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/digest/digest/internal/ledger"
)

// The corpus is signed with this secret for reader 42 (ada@example.org),
// issue 2026-05-04, bounce address bounces@news.example.org.
var (
	testSecret = []byte("bounce-test-secret")
	testParser = NewParser(Options{BounceAddress: "bounces@news.example.org"})
	readers    = map[int64]string{42: "ada@example.org", 43: "bob@example.net"}
	resolver   = Resolver{Secret: testSecret, Lookup: func(id int64) (string, error) {
		if e, ok := readers[id]; ok {
			return e, nil
		}
		return "", fmt.Errorf("subscriber %d: %w", id, ledger.ErrNotFound)
	}}
)

func TestCorpus(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file, envelope    string
		format            string
		kind              Kind
		status, via, rcpt string
		diagnosticHas     string
	}{
		{"dsn-hard.eml", "bounces@news.example.org", "dsn", Hard, "5.1.1", "message-id", "ada@example.org", "User unknown"},
		{"dsn-quota.eml", "", "dsn", Soft, "5.2.2", "verp", "ada@example.org", "Mailbox full"},
		{"dsn-delayed.eml", "", "dsn", Delayed, "4.4.1", "verp", "ada@example.org", "timed out"},
		{"dsn-sender-block.eml", "", "dsn", SenderBlock, "5.7.1", "verp", "ada@example.org", "spamhaus"},
		{"dsn-delivered.eml", "", "dsn", Delivered, "2.0.0", "verp", "ada@example.org", "queued"},
		{"dsn-transient-failed.eml", "", "dsn", Soft, "4.4.7", "verp", "ada@example.org", "Connection refused"},
		{"gmail-address-not-found.eml", "", "gmail", Hard, "5.1.1", "verp", "ada@gmail.example", "does not exist"},
		{"exchange-online.eml", "", "exchange", Hard, "5.1.10", "verp", "ada@contoso.example", "RecipientNotFound"},
		{"exchange-legacy.eml", "bounces@news.example.org", "exchange", Hard, "5.1.1", "message-id", "ada@corp.example", "User unknown"},
		{"exim-failed.eml", "", "exim", Hard, "5.1.1", "verp", "ada@example.org", "User unknown"},
		{"exim-delayed.eml", "", "exim", Delayed, "4.3.0", "verp", "ada@example.org", "Temporary lookup failure"},
		{"qmail.eml", "", "qmail", Hard, "5.1.1", "verp", "ada@example.org", "no mailbox here"},
		{"qmail-quota.eml", "", "qmail", Soft, "5.2.2", "verp", "ada@example.org", "quota"},
		{"yahoo.eml", "", "yahoo", Hard, "", "verp", "ada@yahoo.example", "doesn't have a yahoo.com account"},
		{"arf-abuse.eml", "abuse@news.example.org", "arf", Complaint, "", "verp", "", "abuse"},
		{"arf-headers-only.eml", "", "arf", Complaint, "", "verp", "ada@example.org", "ExampleFBL"},
		{"arf-unsigned.eml", "", "arf", Complaint, "", "", "ada@example.org", "abuse"},
		{"arf-not-spam.eml", "", "arf", Unmatched, "", "message-id", "", "not-spam"},
		{"forwarded-dsn.eml", "bounces@news.example.org", "dsn", Hard, "5.1.1", "message-id", "ada@example.org", "No such user"},
		{"autoreply-ooo.eml", "", "auto-reply", AutoReply, "", "verp", "", "Automatic reply"},
		{"autoreply-vacation.eml", "", "auto-reply", AutoReply, "", "message-id", "", "On vacation"},
		{"garbage.eml", "", "", Unmatched, "", "", "", ""},
		// A forged VERP token, Message-ID and unsubscribe token: parsed,
		// but they name nobody.
		{"forged-verp.eml", "", "dsn", Hard, "5.1.1", "", "ada@example.org", "User unknown"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			t.Parallel()
			raw, err := os.ReadFile(filepath.Join("testdata", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			v := testParser.ParseBytes(raw, tt.envelope)
			if v.Kind != tt.kind || v.Status != tt.status || v.Format != tt.format {
				t.Errorf("kind, status, format = %s, %q, %q; want %s, %q, %q (reason %q, diagnostic %q)",
					v.Kind, v.Status, v.Format, tt.kind, tt.status, tt.format, v.Reason, v.Diagnostic)
			}
			if v.Recipient != tt.rcpt {
				t.Errorf("recipient %q, want %q", v.Recipient, tt.rcpt)
			}
			if !strings.Contains(strings.ToLower(v.Diagnostic+" "+v.Reason), strings.ToLower(tt.diagnosticHas)) {
				t.Errorf("diagnostic %q (reason %q) does not contain %q", v.Diagnostic, v.Reason, tt.diagnosticHas)
			}
			rd, err := resolver.Identify(v.Tokens)
			switch {
			case tt.via == "" && !errors.Is(err, ErrNoReader):
				t.Errorf("Identify = %+v, %v; want ErrNoReader", rd, err)
			case tt.via != "" && (err != nil || rd.SubscriberID != 42 || rd.IssueID != "2026-05-04" || rd.Via != tt.via):
				t.Errorf("Identify = %+v, %v; want reader 42 of 2026-05-04 via %s (tokens %+v)", rd, err, tt.via, v.Tokens)
			}
		})
	}
}

func TestEnvelopeTokenComesFirst(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("testdata/dsn-hard.eml")
	if err != nil {
		t.Fatal(err)
	}
	// Reader 43's VERP address as the envelope recipient wins over the
	// Message-ID of reader 42 in the returned headers.
	v := testParser.ParseBytes(raw, "bounces+NDMuMjAyNi0wNS0wNMLlkXJGqUrI1gnubskSCH8@news.example.org")
	rd, err := resolver.Identify(v.Tokens)
	if err != nil || rd.SubscriberID != 43 || rd.Via != "verp" {
		t.Fatalf("Identify = %+v, %v; want 43 via verp", rd, err)
	}
}

func TestReaderWhoLeft(t *testing.T) {
	t.Parallel()
	raw, _ := os.ReadFile("testdata/qmail.eml")
	gone := Resolver{Secret: testSecret, Lookup: func(id int64) (string, error) {
		return "", fmt.Errorf("subscriber %d: %w", id, ledger.ErrNotFound)
	}}
	if _, err := gone.Identify(testParser.ParseBytes(raw, "").Tokens); !errors.Is(err, ErrNoReader) {
		t.Fatalf("Identify of a reader who left = %v, want ErrNoReader", err)
	}
	down := errors.New("database is down")
	broken := Resolver{Secret: testSecret, Lookup: func(int64) (string, error) { return "", down }}
	if _, err := broken.Identify(testParser.ParseBytes(raw, "").Tokens); !errors.Is(err, down) {
		t.Fatalf("Identify with the store down = %v, want its error", err)
	}
}

func TestMessageIDNeedsADelivery(t *testing.T) {
	t.Parallel()
	raw, _ := os.ReadFile("testdata/dsn-hard.eml") // names reader 42 by Message-ID only
	r := resolver
	r.Sent = func(issue string, id int64) (bool, error) { return false, nil }
	if _, err := r.Identify(testParser.ParseBytes(raw, "").Tokens); !errors.Is(err, ErrNoReader) {
		t.Fatalf("a Message-ID of an issue never sent to the reader: %v, want ErrNoReader", err)
	}
	r.Sent = func(issue string, id int64) (bool, error) { return issue == "2026-05-04" && id == 42, nil }
	if rd, err := r.Identify(testParser.ParseBytes(raw, "").Tokens); err != nil || rd.SubscriberID != 42 {
		t.Fatalf("Identify = %+v, %v", rd, err)
	}
}

func TestCaps(t *testing.T) {
	t.Parallel()
	dsn, _ := os.ReadFile("testdata/dsn-hard.eml")
	small := NewParser(Options{BounceAddress: "bounces@news.example.org", MaxSize: 1 << 20})
	big := append(bytes.Repeat([]byte("Received: x\r\n"), 1), dsn...)
	big = append(big, bytes.Repeat([]byte("A"), 50<<20)...)
	tests := []struct {
		name, reason string
		raw          []byte
	}{
		{"50 MB", "larger than", big},
		{"loop", "mail loop", append(bytes.Repeat([]byte("Received: from a by b; Mon, 4 May 2026 08:00:00 +0000\r\n"), 60), dsn...)},
		{"from us", "mail loop", append([]byte("From: bounces@news.example.org\r\n"), dsn...)},
		{"empty", "not a mail message", nil},
	}
	for _, tt := range tests {
		v := small.Parse(bytes.NewReader(tt.raw), "")
		if v.Kind != Unmatched || !strings.Contains(v.Reason, tt.reason) || !v.Tokens.Empty() {
			t.Errorf("%s: %s %q tokens %+v; want unmatched, %q, no tokens", tt.name, v.Kind, v.Reason, v.Tokens, tt.reason)
		}
	}
}

func TestIsBounceAddress(t *testing.T) {
	t.Parallel()
	for addr, want := range map[string]bool{
		"bounces@news.example.org":                               true,
		"<Bounces@News.Example.org>":                             true,
		"bounces+NDIuMjAyNi0wNS0wNJfl2xF32LK5@news.example.org":  true,
		"bounces+x@news.example.org":                             false,
		"other@news.example.org":                                 false,
		"bounces@news.example.org.evil":                          false,
		"xbounces+NDIuMjAyNi0wNS0wNJfl2xF32LK5@news.example.org": false,
	} {
		if got := testParser.IsBounceAddress(addr); got != want {
			t.Errorf("IsBounceAddress(%q) = %v, want %v", addr, got, want)
		}
	}
}

func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.eml")
	for _, file := range files {
		raw, _ := os.ReadFile(file)
		f.Add(raw)
	}
	known := map[Kind]bool{}
	for _, k := range Kinds {
		known[k] = true
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		v := testParser.ParseBytes(raw, "")
		if !known[v.Kind] {
			t.Fatalf("unknown kind %q", v.Kind)
		}
		if len(v.Diagnostic) > maxDiagnostic+len("…") {
			t.Fatalf("diagnostic of %d bytes", len(v.Diagnostic))
		}
		if n := len(v.Tokens.VERP); n > maxTokens {
			t.Fatalf("%d VERP candidates", n)
		}
		if w := testParser.ParseBytes(raw, ""); w.Kind != v.Kind || w.Status != v.Status {
			t.Fatalf("not deterministic: %v then %v", v, w)
		}
	})
}

// BenchmarkParse parses every message of the corpus once per iteration.
func BenchmarkParse(b *testing.B) {
	files, _ := filepath.Glob("testdata/*.eml")
	var msgs [][]byte
	for _, f := range files {
		raw, _ := os.ReadFile(f)
		msgs = append(msgs, raw)
	}
	b.ReportAllocs()
	for b.Loop() {
		for _, m := range msgs {
			testParser.ParseBytes(m, "")
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*len(msgs)), "µs/msg")
}
