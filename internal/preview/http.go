package preview

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"html/template"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/digest/digest/internal/mail"
)

//go:embed assets
var assets embed.FS

// cookieName holds the token once a browser has shown it.
const cookieName = "digest_preview_token"

// Handler serves the preview:
//
//	GET  /              the page (query: as=ADDRESS, width=both|phone|desktop, scheme=light|dark)
//	GET  /email         the reader's HTML part, for the page's frames
//	GET  /message.eml   the reader's whole message, as sent
//	GET  /events        server-sent events: "update" after every change, "building" before a build
//	POST /refetch       forget the cached feeds and rebuild
//	POST /recheck-links forget the link results and check again
//	POST /send-test     send a test copy to the form's "to"
//
// Without a token it answers only requests addressed to a loopback host
// (so that a web page cannot reach it through DNS rebinding). With one,
// every request must carry it: ?token=T once (it is then kept in a
// cookie), compared in constant time. Cross-origin POSTs are refused.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.servePage)
	mux.HandleFunc("GET /email", s.serveEmail)
	mux.HandleFunc("GET /message.eml", s.serveRaw)
	mux.HandleFunc("GET /events", s.serveEvents)
	mux.HandleFunc("POST /refetch", s.refetch)
	mux.HandleFunc("POST /recheck-links", s.recheckLinks)
	mux.HandleFunc("POST /send-test", s.sendTest)
	static, _ := fs.Sub(assets, "assets")
	mux.Handle("GET /assets/", http.StripPrefix("/assets/", http.FileServerFS(static)))
	return s.guard(http.NewCrossOriginProtection().Handler(mux))
}

func (s *Server) guard(next http.Handler) http.Handler {
	want := sha256.Sum256([]byte(s.opts.Token))
	ok := func(t string) bool {
		got := sha256.Sum256([]byte(t))
		return subtle.ConstantTimeCompare(got[:], want[:]) == 1
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Referrer-Policy", "no-referrer")
		w.Header().Set("Cache-Control", "no-store")
		if s.opts.Token == "" {
			host := r.Host
			if h, _, err := net.SplitHostPort(host); err == nil {
				host = h
			}
			if !mail.Loopback(strings.Trim(host, "[]")) {
				http.Error(w, "digest preview answers only to localhost; start it with --token to reach it by another name", http.StatusForbidden)
				return
			}
			next.ServeHTTP(w, r)
			return
		}
		if t := r.URL.Query().Get("token"); t != "" {
			if !ok(t) {
				http.Error(w, "digest preview: wrong token", http.StatusForbidden)
				return
			}
			http.SetCookie(w, &http.Cookie{Name: cookieName, Value: t, Path: "/", HttpOnly: true,
				SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
			if r.Method == http.MethodGet {
				// Keep the token out of the address bar, history and logs.
				u := *r.URL
				q := u.Query()
				q.Del("token")
				u.RawQuery = q.Encode()
				http.Redirect(w, r, u.RequestURI(), http.StatusSeeOther)
				return
			}
			next.ServeHTTP(w, r)
			return
		}
		if c, err := r.Cookie(cookieName); err == nil && ok(c.Value) {
			next.ServeHTTP(w, r)
			return
		}
		http.Error(w, "digest preview needs its token: open the address that `digest preview` printed (it ends in ?token=…)", http.StatusUnauthorized)
	})
}

// query is the page's state, kept in its address.
type query struct {
	As     string // reader's address; "" for the sample reader
	Width  string // both, phone or desktop
	Scheme string // light or dark
}

func parseQuery(r *http.Request) query {
	q := query{As: strings.TrimSpace(r.FormValue("as")), Width: r.FormValue("width"), Scheme: r.FormValue("scheme")}
	if q.Width != "phone" && q.Width != "desktop" {
		q.Width = "both"
	}
	if q.Scheme != "dark" {
		q.Scheme = "light"
	}
	return q
}

// With returns the page's address with one parameter changed.
func (q query) With(key, value string) string {
	switch key {
	case "as":
		q.As = value
	case "width":
		q.Width = value
	case "scheme":
		q.Scheme = value
	}
	return "/?" + q.values().Encode()
}

// Email returns the address of the frame's document at a version (so that
// a rebuild reloads it).
func (q query) Email(version int64) string {
	v := url.Values{"v": {strconv.FormatInt(version, 10)}, "scheme": {q.Scheme}}
	if q.As != "" {
		v.Set("as", q.As)
	}
	return "/email?" + v.Encode()
}

// Encoded returns the query string of the page's state, for the actions
// that redirect back to it.
func (q query) Encoded() string { return q.values().Encode() }

// Raw returns the address of the whole message.
func (q query) Raw() string {
	if q.As == "" {
		return "/message.eml"
	}
	return "/message.eml?" + url.Values{"as": {q.As}}.Encode()
}

func (q query) values() url.Values {
	v := url.Values{}
	if q.As != "" {
		v.Set("as", q.As)
	}
	if q.Width != "both" {
		v.Set("width", q.Width)
	}
	if q.Scheme != "light" {
		v.Set("scheme", q.Scheme)
	}
	return v
}

// readerView resolves the query's reader on a build: a subscriber by
// address, else the sample reader with a note saying why.
func (s *Server) readerView(ctx context.Context, sn *snapshot, q query) (*view, string) {
	if q.As == "" {
		return sn.view(ctx, SampleReader()), ""
	}
	r, err := sn.sess.Reader(ctx, q.As)
	if err != nil {
		return sn.view(ctx, SampleReader()), q.As + ": " + err.Error() + "; showing the sample reader"
	}
	return sn.view(ctx, r), ""
}

func (s *Server) servePage(w http.ResponseWriter, r *http.Request) {
	q := parseQuery(r)
	sn, fail, version, test := s.current()
	d := pageData{Q: q, Version: version, Failure: fail, Test: test}
	if sn != nil {
		v, note := s.readerView(r.Context(), sn, q)
		if v.Err == "" {
			s.links.Check(s.bg, v.Scan.Links)
		}
		d.fill(sn, v, note, s.links, s.cache)
	}
	var buf bytes.Buffer
	if err := pageTemplate.Execute(&buf, d); err != nil {
		s.log.Error("preview: page template", "err", err)
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-src 'self'; "+
		"frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
	_, _ = w.Write(buf.Bytes())
}

// serveEmail serves the reader's HTML part as delivered, in a sandbox (no
// scripts; links open a new tab); with scheme=dark, as a mail client in
// dark mode applies its styles.
func (s *Server) serveEmail(w http.ResponseWriter, r *http.Request) {
	sn, _, _, _ := s.current()
	if sn == nil {
		http.Error(w, "nothing built yet", http.StatusServiceUnavailable)
		return
	}
	q := parseQuery(r)
	v, _ := s.readerView(r.Context(), sn, q)
	if v.Err != "" {
		http.Error(w, v.Err, http.StatusNotFound)
		return
	}
	html := v.Msg.HTML
	if q.Scheme == "dark" {
		html = ForceDark(html)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "sandbox allow-popups allow-popups-to-escape-sandbox allow-same-origin; "+
		"default-src 'none'; img-src * data:; style-src 'unsafe-inline'; font-src * data:; frame-ancestors 'self'")
	_, _ = w.Write([]byte(withBaseTarget(html)))
}

// serveRaw serves the reader's whole message, to open in a mail client.
func (s *Server) serveRaw(w http.ResponseWriter, r *http.Request) {
	sn, _, _, _ := s.current()
	if sn == nil {
		http.Error(w, "nothing built yet", http.StatusServiceUnavailable)
		return
	}
	v, _ := s.readerView(r.Context(), sn, parseQuery(r))
	if v.Err != "" {
		http.Error(w, v.Err, http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "message/rfc822")
	w.Header().Set("Content-Disposition", `attachment; filename="`+sn.built.Issue.ID+`.eml"`)
	_, _ = w.Write(v.Copy.Message.Data)
}

func (s *Server) refetch(w http.ResponseWriter, r *http.Request) {
	s.cache.Clear()
	s.kick()
	http.Redirect(w, r, parseQuery(r).With("", ""), http.StatusSeeOther)
}

func (s *Server) recheckLinks(w http.ResponseWriter, r *http.Request) {
	s.links.Reset()
	if sn, _, _, _ := s.current(); sn != nil {
		if v, _ := s.readerView(r.Context(), sn, parseQuery(r)); v.Err == "" {
			s.links.Check(s.bg, v.Scan.Links)
		}
	}
	http.Redirect(w, r, parseQuery(r).With("", ""), http.StatusSeeOther)
}

// testTimeout bounds one test send (a relay that hangs).
const testTimeout = 2 * time.Minute

func (s *Server) sendTest(w http.ResponseWriter, r *http.Request) {
	to := strings.TrimSpace(r.FormValue("to"))
	res := &testResult{To: to, At: time.Now()}
	sn, _, _, _ := s.current()
	switch {
	case to == "":
		res.Err = "type an address to send the test copy to"
	case sn == nil || sn.built.Rendered == nil:
		res.Err = "there is no issue to send: nothing is built, or the issue has no articles"
	default:
		ctx, cancel := context.WithTimeout(r.Context(), testTimeout)
		where, err := sn.sess.SendTest(ctx, sn.built, to)
		cancel()
		res.Where = where
		if err != nil {
			res.Err = err.Error()
		}
	}
	s.mu.Lock()
	s.test = res
	s.mu.Unlock()
	s.bump()
	http.Redirect(w, r, parseQuery(r).With("", ""), http.StatusSeeOther)
}

var pageTemplate = template.Must(template.New("page.html.tmpl").Funcs(template.FuncMap{
	"kb":    formatKB,
	"clock": func(t time.Time) string { return t.Format("15:04:05") },
	"date":  stamp, // in the newsletter's zone: {{date .Published $.Zone}}
	"out":   outLine,
	"ms":    func(d time.Duration) string { return d.Round(time.Millisecond).String() },
}).ParseFS(assets, "assets/page.html.tmpl"))
