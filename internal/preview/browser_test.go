package preview_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/digest/digest/internal/ledger"
	"github.com/digest/digest/internal/pipeline"
	"github.com/digest/digest/internal/preview"
)

// chromium returns the browser to drive: $DIGEST_CHROMIUM, else Debian's
// /usr/bin/chromium. Without one the browser tests skip, except in CI
// (CI=true), where they fail.
func chromium(t *testing.T) string {
	t.Helper()
	path := os.Getenv("DIGEST_CHROMIUM")
	if path == "" {
		path = "/usr/bin/chromium"
	}
	if _, err := exec.LookPath(path); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("no Chromium at %s (set DIGEST_CHROMIUM, or apt-get install -y chromium): %v", path, err)
		}
		t.Skipf("no Chromium at %s (set DIGEST_CHROMIUM): %v", path, err)
	}
	return path
}

// browser starts a headless Chromium for one test. It resolves no host
// name but loopback: the email's links and images are never fetched.
func browser(t *testing.T) context.Context {
	t.Helper()
	path := chromium(t)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1700, 1200),
	)
	ctx, cancelCtx := chromedp.NewContext(actx)
	// A bound for the whole test, far above what it needs, so that a
	// broken test ends instead of hanging.
	ctx, cancelTimeout := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(func() {
		cancelTimeout()
		cancelCtx()
		cancelAlloc()
	})
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting %s: %v", path, err)
	}
	return ctx
}

// live serves a preview of f over loopback with its rebuild loop running,
// as `digest preview` does.
func live(t *testing.T, f *fixture) string {
	t.Helper()
	s := newServer(t, f, preview.Options{Debounce: 50 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.Run(ctx)
	}()
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(func() {
		cancel()
		<-done
		s.Close() // ends the page's event stream, so that srv.Close returns
		srv.Close()
	})
	return srv.URL
}

// frameTexts is the text of the email in each of the page's frames.
const frameTexts = `Array.from(document.querySelectorAll("iframe.email")).map(function (f) {
	return f.contentDocument && f.contentDocument.body ? f.contentDocument.body.innerText : "";
})`

// waitFor evaluates js until check accepts its result. The page holds an
// event stream open, so waiting is by the wall clock, polling.
func waitFor[T any](t *testing.T, ctx context.Context, what, js string, check func(T) bool) T {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		got, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
		if err == nil && check(got) {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 60s still waiting for %s; last result %v, error %v", what, got, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// textOf is the text of the first element that css selects, once there is
// some: read in one evaluation, so that a page redrawn meanwhile (the live
// preview replaces its parts) cannot invalidate the node between finding
// and reading it.
func textOf(t *testing.T, ctx context.Context, css string) string {
	t.Helper()
	js := fmt.Sprintf(`(function () { var e = document.querySelector(%q); return e ? e.innerText : ""; })()`, css)
	return waitFor(t, ctx, "text of "+css, js, func(s string) bool { return strings.TrimSpace(s) != "" })
}

// hasAll reports whether every frame's text has every story.
func hasAll(stories ...string) func([]string) bool {
	return func(frames []string) bool {
		if len(frames) != 2 {
			return false
		}
		for _, text := range frames {
			for _, s := range stories {
				if !strings.Contains(text, s) {
					return false
				}
			}
		}
		return true
	}
}

func TestBrowserShowsEveryStory(t *testing.T) {
	ctx := browser(t)
	url := live(t, newFixture(t))
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "every story in both frames", frameTexts, hasAll(wantStories...))
	report := textOf(t, ctx, "#stories")
	for _, s := range wantStories {
		if !strings.Contains(report, s) {
			t.Errorf("the report's story list lacks %q", s)
		}
	}
}

func TestBrowserShowsANewNoteWithoutReload(t *testing.T) {
	ctx := browser(t)
	f := newFixture(t)
	url := live(t, f)
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "the first build", frameTexts, hasAll(wantStories...))
	// A reload would forget this.
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.notReloaded = true`)); err != nil {
		t.Fatal(err)
	}
	const title = "Lighthouse keeper retires after forty years"
	f.writeNote(t, "2026-11-29-lighthouse.md", "---\ntitle: \""+title+"\"\ndate: 2026-11-29T18:00:00Z\n"+
		"url: http://links.test/ok/lighthouse\nsummary: \"A party on the pier.\"\n---\nCake.\n")
	waitFor(t, ctx, "the new note in both frames", frameTexts, hasAll(append(wantStories, title)...))
	same, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.notReloaded === true`))
	if err != nil {
		t.Fatal(err)
	}
	if !same {
		t.Error("the page was reloaded; it should refresh in place")
	}
}

func TestBrowserShowsATemplateErrorAndKeepsRunning(t *testing.T) {
	ctx := browser(t)
	f := newFixture(t)
	url := live(t, f)
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "the first build", frameTexts, hasAll(wantStories...))
	f.writeTemplate(t, "article.html.tmpl", "{{define \"article\"}}\n<p>\n{{.Title}\n</p>\n{{end}}\n")
	msg := waitFor(t, ctx, "the template error on the page",
		`(document.getElementById("build-error") || {}).innerText || ""`,
		func(s string) bool { return strings.Contains(s, "article.html.tmpl:3") })
	if !strings.Contains(msg, f.templates) {
		t.Errorf("the error does not name the file %s:\n%s", f.templates, msg)
	}
	// The last good render stays visible.
	waitFor(t, ctx, "the last good render under the error", frameTexts, hasAll(wantStories...))
	// The server still runs: fixing the template clears the error.
	f.writeTemplate(t, "article.html.tmpl", "{{define \"article\"}}\n<p>{{.Title}}</p>\n{{end}}\n")
	waitFor(t, ctx, "the error to go after the fix", `document.getElementById("build-error") === null`,
		func(gone bool) bool { return gone })
	waitFor(t, ctx, "the stories after the fix", frameTexts, hasAll(wantStories...))
}

// TestBrowserShowsTheIssueThatWentOut: once the issue for now went out,
// the page says so and shows the next one, without the stories sent,
// every date in the newsletter's zone.
func TestBrowserShowsTheIssueThatWentOut(t *testing.T) {
	ctx := browser(t)
	f := newFixture(t)
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	sent := []string{wantStories[0], wantStories[1]}
	f.zone = paris
	f.out = &pipeline.Out{ID: "2026-11-30", Number: 2, Counts: ledger.Counts{Sent: 1204}, Completed: testNow}
	f.sentTitles = map[string]bool{sent[0]: true, sent[1]: true}
	url := live(t, f)
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "the stories not sent in both frames", frameTexts, hasAll(wantStories[2:]...))
	banner, summary, stories := textOf(t, ctx, "#went-out"), textOf(t, ctx, "p.summary"), textOf(t, ctx, "#stories")
	if want := "Issue 2026-11-30 #2 went out at 09:00 to 1,204 readers."; !strings.Contains(banner, want) {
		t.Errorf("banner %q lacks %q", banner, want)
	}
	if want := "Next: issue 2026-12-01 as it would go out at 1 Dec 2026 09:00 CET"; !strings.Contains(summary, want) {
		t.Errorf("summary %q lacks %q", summary, want)
	}
	for _, s := range sent {
		if strings.Contains(stories, s) {
			t.Errorf("the next issue's stories list %q, which went out", s)
		}
	}
	// The library note is dated 27 Nov 10:00 UTC: 11:00 in Paris.
	if want := "Notes, 27 Nov 2026 11:00 CET"; !strings.Contains(stories, want) {
		t.Errorf("stories panel %q lacks %q (the newsletter's zone)", stories, want)
	}
	frames := waitFor(t, ctx, "the frames", frameTexts, hasAll(wantStories[2:]...))
	for _, text := range frames {
		for _, s := range sent {
			if strings.Contains(text, s) {
				t.Errorf("the next issue's message has %q, which went out", s)
			}
		}
	}
}

// TestBrowserBothWidthsFitANarrowWindow: in a 1300 px window, "both"
// widths beside the report must not leave the desktop frame mostly off
// screen (showing only its blank margin): the frames stack and the
// desktop frame is scaled to the room it has, with the story in view.
func TestBrowserBothWidthsFitANarrowWindow(t *testing.T) {
	ctx := browser(t)
	url := live(t, newFixture(t))
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1300, 900), chromedp.Navigate(url)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "every story in both frames", frameTexts, hasAll(wantStories...))
	const geometry = `(function () {
		var box = document.querySelector(".frames").getBoundingClientRect();
		var f = document.querySelector(".frame.desktop iframe").getBoundingClientRect();
		return [box.left, box.right, f.left, f.right, window.innerWidth];
	})()`
	g := waitFor(t, ctx, "the desktop frame within the page", geometry, func(g []float64) bool {
		return len(g) == 5 && g[2] >= g[0]-1 && g[3] <= g[1]+1 && g[3] <= g[4]
	})
	if width := g[3] - g[2]; width < 500 {
		t.Errorf("desktop frame %.0f px wide: too small to read", width)
	}
	caption := textOf(t, ctx, ".frame.desktop figcaption")
	if !strings.Contains(caption, "shown at") {
		t.Errorf("caption %q does not say the frame is scaled", caption)
	}
}
