// Package fetch is the hardened HTTP GET that every remote source goes
// through: bounded in time (dial, TLS, response headers and the whole
// exchange), bounded in size (a cap that fails rather than truncates), limited
// in redirects, and returning bodies converted to UTF-8.
//
// A Client is safe for concurrent use; build one per run and share it.
package fetch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Defaults applied by New to zero Options fields.
const (
	DefaultMaxBytes     int64 = 10 << 20
	DefaultTimeout            = 20 * time.Second
	DefaultMaxRedirects       = 5
	DefaultUserAgent          = "digest/1 (+newsletter digest generator)"
)

// ErrTooLarge is wrapped by the error Get returns when a body exceeds the
// size cap. The body is never silently truncated.
var ErrTooLarge = errors.New("response too large")

// Options configure a Client. Zero values mean the defaults above.
type Options struct {
	UserAgent string
	// MaxBytes caps the decoded (after gzip) body size; default 10 MiB.
	MaxBytes int64
	// Timeout bounds one whole Get, body included; default 20s.
	Timeout time.Duration
	// MaxRedirects is how many redirects one Get follows; 0 means the
	// default (5), a negative value follows none.
	MaxRedirects int
	// Transport replaces the hardened default transport (tests).
	Transport http.RoundTripper
}

// Client performs GET requests with the limits of its Options.
type Client struct {
	http      *http.Client
	userAgent string
	maxBytes  int64
	timeout   time.Duration
}

// Response is a successful (2xx) response with its body read and converted to
// UTF-8, or a 304 Not Modified answer to a conditional request.
type Response struct {
	URL         string // final URL, after redirects
	Body        []byte // UTF-8; an XML declaration's encoding says UTF-8; nil when NotModified
	ContentType string // as sent by the server
	Status      int
	// NotModified is true when the server answered a conditional request
	// with 304: the caller's cached copy is still current.
	NotModified bool
	// Validators for a later conditional GET; empty when the server sent none.
	// On a 304 they are the server's if it repeated them, else the request's.
	ETag         string
	LastModified string
}

// Validators are the ETag and Last-Modified of an earlier response. Sent
// back as If-None-Match and If-Modified-Since, they let a server answer 304
// Not Modified instead of the whole body.
type Validators struct {
	ETag         string
	LastModified string
}

// IsZero reports whether v holds no validator, so a request with it is not
// conditional.
func (v Validators) IsZero() bool { return v.ETag == "" && v.LastModified == "" }

// StatusError is returned (wrapped in an *Error) for a non-2xx response.
type StatusError struct {
	Code   int
	Status string // e.g. "404 Not Found"
}

func (e *StatusError) Error() string { return "HTTP " + e.Status }

// Error is the error type of Get: it names the URL that failed.
type Error struct {
	URL string
	Err error
}

func (e *Error) Error() string { return "fetch " + e.URL + ": " + e.Err.Error() }

// Unwrap returns the underlying cause.
func (e *Error) Unwrap() error { return e.Err }

// New returns a Client with opts' limits applied over a hardened transport.
func New(opts Options) *Client {
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = DefaultMaxBytes
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.MaxRedirects == 0 {
		opts.MaxRedirects = DefaultMaxRedirects
	}
	if opts.UserAgent == "" {
		opts.UserAgent = DefaultUserAgent
	}
	rt := opts.Transport
	if rt == nil {
		rt = newTransport(opts.Timeout)
	}
	maxRedirects := max(opts.MaxRedirects, 0)
	return &Client{
		http: &http.Client{
			Transport: rt,
			CheckRedirect: func(req *http.Request, via []*http.Request) error {
				if len(via) > maxRedirects {
					return fmt.Errorf("stopped after %d redirects", maxRedirects)
				}
				if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
					return fmt.Errorf("redirect to unsupported scheme %q", req.URL.Scheme)
				}
				return nil
			},
		},
		userAgent: opts.UserAgent,
		maxBytes:  opts.MaxBytes,
		timeout:   opts.Timeout,
	}
}

func newTransport(total time.Duration) *http.Transport {
	step := min(total, 10*time.Second)
	return &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: (&net.Dialer{
			Timeout:   step,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		TLSHandshakeTimeout: step,
		// A backstop only: the request's context (total) ends first, so
		// the error says "timed out after …" rather than racing this one.
		ResponseHeaderTimeout: total + time.Second,
		ExpectContinueTimeout: time.Second,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConns:          64,
		MaxIdleConnsPerHost:   4,
		ForceAttemptHTTP2:     true,
	}
}

// Get fetches rawURL (http or https only). It fails, with an *Error naming
// the URL, on a transport error, a non-2xx status (*StatusError), a body
// over the cap (ErrTooLarge), or when ctx or the client's timeout ends first.
func (c *Client) Get(ctx context.Context, rawURL string) (*Response, error) {
	return c.GetIf(ctx, rawURL, Validators{})
}

// GetIf is Get made conditional on v: when v is not zero it sends
// If-None-Match and If-Modified-Since, and a 304 answer gives a Response
// with NotModified set and no Body. With a zero v it is Get, and a 304 is
// an error like any other non-2xx status.
func (c *Client) GetIf(ctx context.Context, rawURL string, v Validators) (*Response, error) {
	resp, err := c.get(ctx, rawURL, v)
	if err != nil {
		return nil, &Error{URL: rawURL, Err: err}
	}
	return resp, nil
}

func (c *Client) get(ctx context.Context, rawURL string, v Validators) (*Response, error) {
	u, err := checkURL(rawURL)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeoutCause(ctx, c.timeout,
		fmt.Errorf("timed out after %s", c.timeout))
	defer cancel()
	req, err := c.request(ctx, u, v)
	if err != nil {
		return nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL is named by *Error already
		}
		return nil, timedOut(ctx, err)
	}
	defer resp.Body.Close()

	if resp.StatusCode == http.StatusNotModified && !v.IsZero() {
		_, _ = io.CopyN(io.Discard, resp.Body, 4<<10)
		return notModified(resp, v), nil
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		_, _ = io.CopyN(io.Discard, resp.Body, 4<<10) // lets the connection be reused
		return nil, &StatusError{Code: resp.StatusCode, Status: resp.Status}
	}
	body, err := c.readBody(ctx, resp)
	if err != nil {
		return nil, err
	}
	ct := resp.Header.Get("Content-Type")
	return &Response{
		URL:          resp.Request.URL.String(),
		Body:         ToUTF8(body, ct),
		ContentType:  ct,
		Status:       resp.StatusCode,
		ETag:         resp.Header.Get("ETag"),
		LastModified: resp.Header.Get("Last-Modified"),
	}, nil
}

// checkURL accepts absolute http and https URLs only.
func checkURL(rawURL string) (*url.URL, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("unsupported scheme %q (want http or https)", u.Scheme)
	}
	if u.Host == "" {
		return nil, errors.New("no host in URL")
	}
	return u, nil
}

// request is the GET of u, conditional when v holds validators.
func (c *Client) request(ctx context.Context, u *url.URL, v Validators) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("User-Agent", c.userAgent)
	req.Header.Set("Accept", "application/rss+xml, application/atom+xml, application/feed+json, "+
		"application/xml;q=0.9, text/xml;q=0.9, application/json;q=0.8, text/html;q=0.7, */*;q=0.5")
	if v.ETag != "" {
		req.Header.Set("If-None-Match", v.ETag)
	}
	if v.LastModified != "" {
		req.Header.Set("If-Modified-Since", v.LastModified)
	}
	return req, nil
}

// timedOut turns the transport's "context deadline exceeded" into the
// reason a user can act on (the cause ctx was given).
func timedOut(ctx context.Context, err error) error {
	if cause := context.Cause(ctx); cause != nil && ctx.Err() != nil {
		if errors.Is(cause, context.Canceled) || errors.Is(cause, context.DeadlineExceeded) {
			return err
		}
		return fmt.Errorf("%w (%w)", cause, ctx.Err())
	}
	return err
}

// notModified is the answer to a conditional GET whose copy is current;
// validators the server did not repeat are the ones sent.
func notModified(resp *http.Response, v Validators) *Response {
	out := &Response{
		URL:          resp.Request.URL.String(),
		ContentType:  resp.Header.Get("Content-Type"),
		Status:       resp.StatusCode,
		NotModified:  true,
		ETag:         resp.Header.Get("ETag"),
		LastModified: resp.Header.Get("Last-Modified"),
	}
	if out.ETag == "" {
		out.ETag = v.ETag
	}
	if out.LastModified == "" {
		out.LastModified = v.LastModified
	}
	return out
}

// readBody reads the body up to the size cap.
func (c *Client) readBody(ctx context.Context, resp *http.Response) ([]byte, error) {
	if resp.ContentLength > c.maxBytes {
		return nil, c.tooLarge()
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, c.maxBytes+1))
	if err != nil {
		return nil, timedOut(ctx, fmt.Errorf("reading body: %w", err))
	}
	if int64(len(body)) > c.maxBytes {
		return nil, c.tooLarge()
	}
	return body, nil
}

func (c *Client) tooLarge() error {
	return fmt.Errorf("%w: over the %s cap", ErrTooLarge, formatBytes(c.maxBytes))
}

func formatBytes(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	default:
		return strings.TrimSpace(fmt.Sprintf("%d bytes", n))
	}
}
