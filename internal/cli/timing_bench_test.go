package cli_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/digest/digest/internal/cli"
)

// BenchmarkFormTiming measures what an outsider sees of POST /subscribe
// and POST /unsubscribe through `digest serve` on a SQLite store of 200
// readers: the time to answer for an address on the list and for one that
// is not, interleaved, each request from its own client address (so that
// no rate limit answers). It reports the median and the quartiles of each
// in microseconds; the two should not be told apart.
//
//	go test -run '^$' -bench FormTiming -benchtime 400x ./internal/cli
func BenchmarkFormTiming(b *testing.B) {
	dir := b.TempDir()
	var csv strings.Builder
	csv.WriteString("email,name\n")
	const readers = 200
	for i := range readers {
		fmt.Fprintf(&csv, "reader%03d@example.org,Reader %d\n", i, i)
	}
	must := func(err error) {
		if err != nil {
			b.Fatal(err)
		}
	}
	must(os.WriteFile(filepath.Join(dir, "readers.csv"), []byte(csv.String()), 0o644))
	config := filepath.Join(dir, "config.yaml")
	must(os.WriteFile(config, []byte(`newsletter:
  name: Timing
  from: "Timing <digest@example.org>"
  base_url: http://127.0.0.1:9
sources:
  - {name: Notes, type: markdown, path: notes}
server: {listen: "127.0.0.1:0", client_ip_header: X-Real-IP}
secret: timing-secret
delivery: {transport: file, outbox: outbox}
log: {level: error}
`), 0o644))
	must(os.MkdirAll(filepath.Join(dir, "notes"), 0o755))
	var out, errb bytes.Buffer
	if err := cli.Run(context.Background(), []string{"subscribers", "import", filepath.Join(dir, "readers.csv"), "--config", config}, &out, &errb); err != nil {
		b.Fatalf("import: %v\n%s", err, errb.String())
	}

	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = cli.Run(ctx, []string{"serve", "--config", config}, pw, io.Discard)
		pw.Close()
	}()
	defer func() { cancel(); <-done }()
	sc := bufio.NewScanner(pr)
	if !sc.Scan() {
		b.Fatal("serve printed nothing")
	}
	m := regexp.MustCompile(`on http://(\S+) `).FindStringSubmatch(sc.Text())
	if m == nil {
		b.Fatalf("serve printed %q", sc.Text())
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}

	post := func(path, email string, n int) time.Duration {
		form := url.Values{"email": {email}, "name": {"N"}}
		req, _ := http.NewRequest("POST", "http://"+m[1]+path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Real-IP", fmt.Sprintf("10.%d.%d.%d", n>>16&255, n>>8&255, n&255))
		start := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		took := time.Since(start)
		if resp.StatusCode != 200 {
			b.Fatalf("%s %s: %d", path, email, resp.StatusCode)
		}
		return took
	}
	var subKnown, subNew, unsubKnown, unsubNew []time.Duration
	b.ResetTimer()
	for i := range b.N {
		known := fmt.Sprintf("reader%03d@example.org", i%readers)
		fresh := fmt.Sprintf("new%06d@example.org", i)
		n := 4 * i
		if i%2 == 0 {
			subKnown = append(subKnown, post("/subscribe", known, n))
			subNew = append(subNew, post("/subscribe", fresh, n+1))
		} else {
			subNew = append(subNew, post("/subscribe", fresh, n+1))
			subKnown = append(subKnown, post("/subscribe", known, n))
		}
		unsubKnown = append(unsubKnown, post("/unsubscribe", known, n+2))
		unsubNew = append(unsubNew, post("/unsubscribe", "nobody"+fresh, n+3))
	}
	b.StopTimer()
	for _, s := range []struct {
		name string
		d    []time.Duration
	}{{"sub-listed", subKnown}, {"sub-new", subNew}, {"unsub-listed", unsubKnown}, {"unsub-unknown", unsubNew}} {
		slices.Sort(s.d)
		q := func(f float64) float64 { return float64(s.d[int(f*float64(len(s.d)-1))].Microseconds()) }
		b.ReportMetric(q(0.25), s.name+"-p25-µs")
		b.ReportMetric(q(0.5), s.name+"-p50-µs")
		b.ReportMetric(q(0.75), s.name+"-p75-µs")
	}
	b.ReportMetric(0, "ns/op")
}
