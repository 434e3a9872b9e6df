package pipeline

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/digest/digest/internal/article"
	"github.com/digest/digest/internal/deliver"
	"github.com/digest/digest/internal/issue"
	"github.com/digest/digest/internal/ledger"
	"github.com/digest/digest/internal/mail"
	"github.com/digest/digest/internal/render"
)

// maxTopicRenders bounds the distinct article sets rendered (and kept
// encoded) for one issue; readers past it still get the right issue, each
// rendered for them alone.
const maxTopicRenders = 256

// topicBuilder builds each recipient's message from the part of the issue
// their topics cover. It renders and encodes the issue once per distinct
// set of articles (not per reader, not even per topic set: topic sets that
// select the same articles share one rendering), on first use; a reader
// with no topics, or whose topics cover every article, gets the issue
// rendered at build time. A reader whose part would be empty is skipped.
type topicBuilder struct {
	b      *Built
	full   deliver.Builder
	p      *Pipeline
	encode func(*render.Rendered) (deliver.Builder, error)
	// topicsOf holds each article's topics; nil means for everyone.
	topicsOf [][]string

	mu    sync.Mutex
	parts map[string]*part // article-index key → its rendering
}

type part struct {
	once sync.Once
	msgs deliver.Builder
	err  error
}

// Encode returns the issue's message builder, the one delivery uses: it
// picks each recipient's part by their topics when any source has topics
// (and skips a reader whose part is empty), else it is the plain one. The
// preview and test copies build through it too.
func (p *Pipeline) Encode(b *Built) (deliver.Builder, error) {
	if p.Delivery.Encode == nil {
		return nil, errors.New("the pipeline has no message encoder (Delivery.Encode)")
	}
	full, err := p.Delivery.Encode(b.Rendered)
	if err != nil {
		return nil, err
	}
	topics := p.topicsOf(b)
	if topics == nil {
		return full, nil
	}
	t := &topicBuilder{b: b, full: full, p: p, encode: p.Delivery.Encode, parts: map[string]*part{},
		topicsOf: articleTopics(topics, b.Issue)}
	return t, nil
}

// articleTopics lists the topics of each of the issue's articles (in the
// order of Articles) by its source's topics; nil means for everyone.
func articleTopics(sourceTopics map[string][]string, iss issue.Issue) [][]string {
	var out [][]string
	for _, a := range iss.Articles() {
		topics, ok := sourceTopics[a.Source]
		if !ok || len(topics) == 0 {
			topics = nil // a source no longer configured, or topics: []: for everyone
		}
		out = append(out, topics)
	}
	return out
}

// keepFor is the rule of topics: the positions of the articles a reader
// with topics gets (those for everyone, and those sharing a topic).
func keepFor(topicsOf [][]string, topics []string) []int {
	var keep []int
	for i, ts := range topicsOf {
		if ts == nil || intersects(ts, topics) {
			keep = append(keep, i)
		}
	}
	return keep
}

// ReaderIssue is the issue as a reader with these topics gets it: only the
// sections and stories their topics cover (the whole issue for no topics).
// An empty result means the reader is skipped.
func (p *Pipeline) ReaderIssue(iss issue.Issue, topics []string) issue.Issue {
	if len(topics) == 0 || p.SourceTopics == nil {
		return iss
	}
	return subset(iss, keepFor(articleTopics(p.SourceTopics, iss), topics))
}

// Build builds rc's message, or returns an error wrapping deliver.ErrSkip
// when nothing in the issue matches rc's topics.
func (t *topicBuilder) Build(dst []byte, rc ledger.Recipient) (mail.Message, error) {
	if len(rc.Topics) == 0 {
		return t.full.Build(dst, rc)
	}
	keep := keepFor(t.topicsOf, rc.Topics)
	switch {
	case len(keep) == 0:
		return mail.Message{}, fmt.Errorf("%w (topics %s)", deliver.ErrSkip, strings.Join(rc.Topics, ", "))
	case len(keep) == len(t.topicsOf):
		return t.full.Build(dst, rc)
	}
	msgs, err := t.part(keep)
	if err != nil {
		return mail.Message{}, err
	}
	return msgs.Build(dst, rc)
}

// part returns the builder of the issue cut down to the articles keep,
// rendering it on first use; concurrent callers wait for one rendering.
func (t *topicBuilder) part(keep []int) (deliver.Builder, error) {
	var key strings.Builder
	for _, i := range keep {
		key.WriteString(strconv.Itoa(i))
		key.WriteByte(',')
	}
	t.mu.Lock()
	pt, ok := t.parts[key.String()]
	if !ok {
		pt = &part{}
		if len(t.parts) < maxTopicRenders {
			t.parts[key.String()] = pt
		}
	}
	t.mu.Unlock()
	pt.once.Do(func() {
		iss := subset(t.b.Issue, keep)
		r, err := t.p.rendererOf(t.b).Render(iss, iss.Intro)
		if err != nil {
			pt.err = fmt.Errorf("issue %s for topics: %w", iss.ID, err)
			return
		}
		pt.msgs, pt.err = t.encode(r)
	})
	return pt.msgs, pt.err
}

// subset is iss with only the articles at the positions keep (ascending,
// in the order of iss.Articles), and without the sections left empty.
func subset(iss issue.Issue, keep []int) issue.Issue {
	out := iss
	out.Sections = nil
	i, k := 0, 0
	for _, s := range iss.Sections {
		var as []article.Article
		for _, a := range s.Articles {
			if k < len(keep) && keep[k] == i {
				as = append(as, a)
				k++
			}
			i++
		}
		if len(as) > 0 {
			out.Sections = append(out.Sections, issue.Section{Name: s.Name, Articles: as})
		}
	}
	return out
}

func intersects(a, b []string) bool {
	for _, x := range a {
		if slices.Contains(b, x) {
			return true
		}
	}
	return false
}
