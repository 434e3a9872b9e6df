package preview

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// LinkState is the outcome of checking one link.
type LinkState string

// The states of a link.
const (
	LinkChecking LinkState = "checking"
	LinkOK       LinkState = "ok"
	LinkRedirect LinkState = "redirect" // 3xx: works, but the issue should carry the final address
	LinkBroken   LinkState = "broken"   // 4xx, 5xx or no answer
	LinkSkipped  LinkState = "not checked"
)

// LinkResult is what checking one link found.
type LinkResult struct {
	URL      string
	State    LinkState
	Status   int    // HTTP status; 0 when there was none
	Method   string // HEAD, or GET when the server refused HEAD
	Location string // where a redirect points
	Detail   string // the error, or why the link was not checked
}

// LinkOptions configure a LinkChecker; zero values get defaults.
type LinkOptions struct {
	// Client makes the requests; it must not follow redirects (they are
	// reported). Nil means a client with no redirects and Timeout.
	Client      *http.Client
	Concurrency int           // checks at a time; default 4
	Timeout     time.Duration // per request; default 10s
	UserAgent   string
}

// LinkChecker checks each link once (HEAD, then GET when the server answers
// HEAD with 405 or 501) and keeps the results until Reset, so that a
// rebuild rechecks only new links.
type LinkChecker struct {
	opts   LinkOptions
	sem    chan struct{}
	notify func() // called when the last check in flight finishes

	mu      sync.Mutex
	results map[string]LinkResult
	gen     int // bumped by Reset: late results of an older generation are dropped
	active  int
	wg      sync.WaitGroup
}

// NewLinkChecker returns a checker; notify (optional) is called each time
// every started check has finished.
func NewLinkChecker(opts LinkOptions, notify func()) *LinkChecker {
	if opts.Concurrency <= 0 {
		opts.Concurrency = 4
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	if opts.Client == nil {
		opts.Client = &http.Client{
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	if opts.UserAgent == "" {
		opts.UserAgent = "digest-preview (link check)"
	}
	if notify == nil {
		notify = func() {}
	}
	return &LinkChecker{opts: opts, sem: make(chan struct{}, opts.Concurrency), notify: notify, results: map[string]LinkResult{}}
}

// Check starts checking, in the background, the links not checked yet. ctx
// bounds the checks (cancel it to stop them).
func (c *LinkChecker) Check(ctx context.Context, links []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, l := range links {
		key := linkKey(l)
		if _, ok := c.results[key]; ok {
			continue
		}
		if state, why := uncheckable(l); state != "" {
			c.results[key] = LinkResult{URL: key, State: state, Detail: why}
			continue
		}
		c.results[key] = LinkResult{URL: key, State: LinkChecking}
		c.active++
		c.wg.Add(1)
		go c.run(ctx, key, c.gen)
	}
}

func (c *LinkChecker) run(ctx context.Context, link string, gen int) {
	defer c.wg.Done()
	var res LinkResult
	select {
	case c.sem <- struct{}{}:
		res = c.check(ctx, link)
		<-c.sem
	case <-ctx.Done():
		res = LinkResult{URL: link, State: LinkBroken, Detail: ctx.Err().Error()}
	}
	c.mu.Lock()
	if gen == c.gen {
		c.results[link] = res
	}
	c.active--
	idle := c.active == 0
	c.mu.Unlock()
	if idle {
		c.notify()
	}
}

// check asks for one link: HEAD, and GET when HEAD is refused.
func (c *LinkChecker) check(ctx context.Context, link string) LinkResult {
	res := c.request(ctx, http.MethodHead, link)
	if res.Status == http.StatusMethodNotAllowed || res.Status == http.StatusNotImplemented {
		res = c.request(ctx, http.MethodGet, link)
	}
	return res
}

func (c *LinkChecker) request(ctx context.Context, method, link string) LinkResult {
	res := LinkResult{URL: link, Method: method}
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, link, nil)
	if err != nil {
		res.State, res.Detail = LinkBroken, err.Error()
		return res
	}
	req.Header.Set("User-Agent", c.opts.UserAgent)
	resp, err := c.opts.Client.Do(req)
	if err != nil {
		res.State, res.Detail = LinkBroken, describe(err, c.opts.Timeout)
		return res
	}
	// A little of the body lets the connection be reused; the rest is
	// not needed.
	_, _ = io.CopyN(io.Discard, resp.Body, 64<<10)
	resp.Body.Close()
	res.Status = resp.StatusCode
	switch {
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		res.State = LinkRedirect
		if loc, err := resp.Location(); err == nil {
			res.Location = loc.String()
		}
	case resp.StatusCode >= 400:
		res.State, res.Detail = LinkBroken, resp.Status
	default:
		res.State = LinkOK
	}
	return res
}

// describe shortens a client error for the report.
func describe(err error, timeout time.Duration) string {
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Sprintf("no answer within %s", timeout)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err.Error()
	}
	return err.Error()
}

// Results returns the current result of each link, in the order given.
func (c *LinkChecker) Results(links []string) []LinkResult {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]LinkResult, 0, len(links))
	seen := map[string]bool{}
	for _, l := range links {
		key := linkKey(l)
		if seen[key] {
			continue
		}
		seen[key] = true
		r, ok := c.results[key]
		if !ok {
			r = LinkResult{URL: key, State: LinkChecking}
		}
		out = append(out, r)
	}
	return out
}

// Reset forgets every result, so that the next Check asks again.
func (c *LinkChecker) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.results = map[string]LinkResult{}
}

// Wait blocks until every check started has finished.
func (c *LinkChecker) Wait() { c.wg.Wait() }

// linkKey is the link as requested: a fragment never reaches the server.
func linkKey(link string) string {
	if i := strings.IndexByte(link, '#'); i >= 0 {
		return link[:i]
	}
	return link
}

// uncheckable tells a link that is not checked over HTTP: skipped (another
// scheme, an anchor in the message) or broken as it stands (a relative
// link, which a mail client has no base to resolve against). It returns ""
// for a link to check.
func uncheckable(link string) (LinkState, string) {
	if strings.HasPrefix(link, "#") {
		return LinkSkipped, "an anchor in the message"
	}
	u, err := url.Parse(link)
	switch {
	case err != nil:
		return LinkBroken, "not a valid URL: " + err.Error()
	case u.Scheme == "http" || u.Scheme == "https":
		if u.Host == "" {
			return LinkBroken, "no host"
		}
		return "", ""
	case u.Scheme == "":
		return LinkBroken, "a relative link: mail clients have no base to resolve it against"
	default:
		return LinkSkipped, u.Scheme + ": link"
	}
}
