package deliver_test

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/digest/digest/internal/article"
	"github.com/digest/digest/internal/deliver"
	"github.com/digest/digest/internal/issue"
	"github.com/digest/digest/internal/ledger"
	"github.com/digest/digest/internal/mail"
	"github.com/digest/digest/internal/render"
	"github.com/digest/digest/internal/smtptest"
)

// realisticIssue renders a 30-article issue with the default templates
// (inlined CSS and all), as `digest build` would.
func realisticIssue(tb testing.TB) *render.Rendered { return realisticIssueOf(tb, 10) }

// realisticIssueOf is realisticIssue with perSection articles in each of
// its three sections: 10 makes messages of about 78 KB, 2 about 20 KB.
func realisticIssueOf(tb testing.TB, perSection int) *render.Rendered {
	tb.Helper()
	when := time.Date(2026, 5, 4, 8, 0, 0, 0, time.UTC)
	var secs []issue.Section
	for s, name := range []string{"World", "Science", "Around town"} {
		sec := issue.Section{Name: name}
		for i := range perSection {
			sec.Articles = append(sec.Articles, article.Article{
				ID:     fmt.Sprintf("a%d-%d", s, i),
				Title:  fmt.Sprintf("Headline number %d of %s: something happened that readers care about", i, name),
				Link:   fmt.Sprintf("https://news.example.org/%s/2026/05/story-%d?utm_source=digest", strings.ToLower(name), i),
				Source: name + " desk", Section: name, Published: when.Add(-time.Duration(i+1) * 5 * time.Hour),
				Teaser: strings.Repeat("A teaser sentence with some detail about the story, its people and places. ", 4) +
					"Ünïcödé too — “quotes” and more…",
				Image: fmt.Sprintf("https://news.example.org/img/%d-%d.jpg", s, i),
			})
		}
		secs = append(secs, sec)
	}
	rr, err := render.New("", render.Newsletter{Name: "The Example Weekly", BaseURL: "https://news.example.org",
		Footer: "Example Weekly, 1 Harbour Street", ArchiveURL: "https://news.example.org/archive", Location: time.UTC})
	if err != nil {
		tb.Fatal(err)
	}
	r, err := rr.Render(issue.Issue{ID: "2026-05-04", Number: 12, Date: when, From: when.Add(-168 * time.Hour), Sections: secs}, "")
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

func benchComposer(tb testing.TB) *mail.Composer {
	tb.Helper()
	c, err := mail.NewComposer(mail.Options{
		ListName: "The Example Weekly", From: "Example Weekly <news@example.org>",
		BaseURL: "https://news.example.org", Secret: []byte("0123456789abcdef"),
	})
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// baseline pushes msg to n recipients over conns connections with the bare
// go-smtp client (MAIL, RCPT, DATA per message, no building, no ledger).
func baseline(tb testing.TB, addr string, msg []byte, n, conns int) time.Duration {
	tb.Helper()
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	for w := range conns {
		wg.Go(func() {
			c, err := smtp.Dial(addr)
			if err != nil {
				errs <- err
				return
			}
			defer func() { _ = c.Quit() }()
			if err := c.Hello("bench.local"); err != nil {
				errs <- err
				return
			}
			for i := w; i < n; i += conns {
				if err := c.Mail("news@example.org", nil); err != nil {
					errs <- err
					return
				}
				if err := c.Rcpt(fmt.Sprintf("r%06d@example.com", i), nil); err != nil {
					errs <- err
					return
				}
				wc, err := c.Data()
				if err != nil {
					errs <- err
					return
				}
				if _, err := wc.Write(msg); err != nil {
					errs <- err
					return
				}
				if err := wc.Close(); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		tb.Fatal(err)
	}
	return time.Since(start)
}

// BenchmarkThroughput sends 5,000 messages of a realistic 30-article issue
// over 4 connections to an in-process discard SMTP server, through the real
// engine (in-memory ledger), and, in the same run, pushes as many pre-built
// messages over 4 connections with the bare go-smtp client. It reports both
// rates and their ratio:
//
//	go test -run '^$' -bench Throughput -benchtime 3x ./internal/deliver
func BenchmarkThroughput(b *testing.B) {
	const n, conns = 5000, 4
	r := realisticIssue(b)
	comp := benchComposer(b)
	prep, err := comp.Prepare(r)
	if err != nil {
		b.Fatal(err)
	}
	sample, err := prep.Build(nil, ledger.Recipient{IssueID: issueID, SubscriberID: 1, Email: "r000001@example.com", Name: "Reader 1"})
	if err != nil {
		b.Fatal(err)
	}
	msg := bytes.Clone(sample.Data)
	var engineTime, baseTime time.Duration
	rounds := 0
	for b.Loop() {
		srv := smtptest.New(b, smtptest.WithDiscard())
		baseTime += baseline(b, srv.Addr, msg, n, conns)
		if srv.Total() != n {
			b.Fatalf("baseline: server accepted %d, want %d", srv.Total(), n)
		}

		srv = smtptest.New(b, smtptest.WithDiscard())
		l := newFakeLedger(issueID, n)
		tr := smtpTransport(b, srv, nil)
		start := time.Now()
		sum, err := deliver.Issue(b.Context(), issueID, prepare(b, comp, r), l, tr, deliver.Options{Connections: conns})
		engineTime += time.Since(start)
		if err != nil || sum.Sent != n || srv.Total() != n {
			b.Fatalf("engine: %+v, server accepted %d, err %v", sum, srv.Total(), err)
		}
		rounds++
	}
	engineRate := float64(n*rounds) / engineTime.Seconds()
	baseRate := float64(n*rounds) / baseTime.Seconds()
	b.ReportMetric(engineRate, "engine-msg/s")
	b.ReportMetric(baseRate, "baseline-msg/s")
	b.ReportMetric(engineRate/baseRate, "ratio")
	b.ReportMetric(float64(len(msg)), "bytes/msg")
}

// BenchmarkBuild is the per-recipient cost of building one message of the
// realistic issue.
func BenchmarkBuild(b *testing.B) {
	prep, err := benchComposer(b).Prepare(realisticIssue(b))
	if err != nil {
		b.Fatal(err)
	}
	rc := ledger.Recipient{IssueID: issueID, SubscriberID: 7, Email: "ann@example.com", Name: "Ann Example"}
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		m, err := prep.Build(buf, rc)
		if err != nil {
			b.Fatal(err)
		}
		buf = m.Data[:0]
	}
}
