package pipeline

import (
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/digest/digest/internal/article"
	"github.com/digest/digest/internal/deliver"
	"github.com/digest/digest/internal/issue"
	"github.com/digest/digest/internal/ledger"
	"github.com/digest/digest/internal/mail"
	"github.com/digest/digest/internal/render"
)

func TestTopicBuilderRendersOncePerArticleSet(t *testing.T) {
	r, err := render.New("", render.Newsletter{Name: "Test", BaseURL: "https://example.org"})
	if err != nil {
		t.Fatal(err)
	}
	comp, err := mail.NewComposer(mail.Options{ListName: "Test", From: "news@example.org", BaseURL: "https://example.org", Secret: []byte("s")})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)
	art := func(title, src, section string) article.Article {
		return article.Article{ID: title, Title: title, Link: "https://example.org/" + title, Source: src, Section: section, Published: now.Add(-time.Hour)}
	}
	iss := issue.Issue{ID: "2026-11-30", Number: 1, Date: now, Sections: []issue.Section{
		{Name: "World", Articles: []article.Article{art("world-one", "W", "World"), art("world-two", "W", "World")}},
		{Name: "Town", Articles: []article.Article{art("town-one", "T", "Town")}},
		{Name: "Notes", Articles: []article.Article{art("note-one", "N", "Notes")}},
	}}
	full, err := r.Render(iss, "")
	if err != nil {
		t.Fatal(err)
	}
	var encodes atomic.Int32
	p := &Pipeline{Renderer: r, SourceTopics: map[string][]string{"W": {"world"}, "T": {"town", "local"}, "N": {}}}
	p.Delivery.Encode = func(r *render.Rendered) (deliver.Builder, error) {
		encodes.Add(1)
		return comp.Prepare(r)
	}
	msgs, err := p.Encode(&Built{Issue: iss, Rendered: full})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		topics  []string
		in, out []string
	}{
		{nil, []string{"world-one", "town-one", "note-one"}, nil},
		{[]string{"world"}, []string{"world-one", "world-two", "note-one"}, []string{"town-one"}},
		{[]string{"world", "sport"}, []string{"world-one", "note-one"}, []string{"town-one"}}, // same articles as {world}
		{[]string{"local"}, []string{"town-one", "note-one"}, []string{"world-one"}},
		{[]string{"local", "world"}, []string{"world-one", "town-one", "note-one"}, nil}, // everything: the full rendering
		{[]string{"sport"}, []string{"note-one"}, []string{"world-one", "town-one"}},     // the source for everyone
	}
	var wg sync.WaitGroup
	for range 4 { // concurrent workers share one rendering per set
		for i, tt := range tests {
			wg.Add(1)
			go func() {
				defer wg.Done()
				m, err := msgs.Build(nil, ledger.Recipient{IssueID: iss.ID, SubscriberID: int64(i + 1), Email: "r@example.org", Topics: tt.topics})
				if err != nil {
					t.Errorf("%v: %v", tt.topics, err)
					return
				}
				body := string(m.Data)
				for _, s := range tt.in {
					if !strings.Contains(body, s) {
						t.Errorf("%v: %s missing", tt.topics, s)
					}
				}
				for _, s := range tt.out {
					if strings.Contains(body, s) {
						t.Errorf("%v: %s is not of these topics", tt.topics, s)
					}
				}
			}()
		}
	}
	wg.Wait()
	// The full issue, {world} (shared with {world, sport}), {local},
	// {sport}: four encodings for six topic sets and 24 messages.
	if n := encodes.Load(); n != 4 {
		t.Errorf("encoded %d times, want 4", n)
	}

	// Nothing for a reader's topics, and no source for everyone: skipped.
	p.SourceTopics["N"] = []string{"notes"}
	msgs, err = p.Encode(&Built{Issue: iss, Rendered: full})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := msgs.Build(nil, ledger.Recipient{IssueID: iss.ID, SubscriberID: 9, Email: "r@example.org", Topics: []string{"sport"}}); !errors.Is(err, deliver.ErrSkip) {
		t.Errorf("reader with no matching article: %v, want ErrSkip", err)
	}
}
