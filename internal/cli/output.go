package cli

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/digest/digest/internal/pipeline"
	"github.com/digest/digest/internal/plural"
	"github.com/digest/digest/internal/source"
)

// relPath shows a path relative to the working directory when it is inside it.
func relPath(p string) string {
	wd, err := os.Getwd()
	if err != nil {
		return p
	}
	if r, err := filepath.Rel(wd, p); err == nil && !strings.HasPrefix(r, "..") {
		return r
	}
	return p
}

// failStreak is how many failed runs in a row make a source's report loud.
const failStreak = 3

// printSources reports each source's yield; failures loudly, and the
// items or files a source skipped as warnings. The source is named once
// per line, and several reasons go one per line below it.
func printSources(w io.Writer, results []pipeline.SourceResult) {
	var failed, partial int
	for _, r := range results {
		switch {
		case r.Failed():
			failed++
		case r.Err != nil:
			partial++
		}
	}
	summary := fmt.Sprintf("Sources: %d ok", len(results)-failed-partial)
	if partial > 0 {
		summary += fmt.Sprintf(", %d partial", partial)
	}
	fmt.Fprintf(w, "%s, %d failed\n", summary, failed)
	for _, r := range results {
		yield := fmt.Sprintf("%s, %s (%s)", r.Status, plural.N(r.Articles, "item", "items"), r.Took.Round(time.Millisecond))
		switch {
		case r.Failing(failStreak):
			printReasons(w, fmt.Sprintf("  !!! %s has failed %d runs in a row", r.Name, r.Streak), r.Err)
		case r.Failed():
			printReasons(w, "  ! "+r.Name, r.Err)
		case r.Err != nil:
			printReasons(w, "  ~ "+r.Name+": "+yield+"; skipped", r.Err)
		default:
			fmt.Fprintf(w, "    %s: %s\n", r.Name, yield)
		}
	}
}

// printReasons prints head with err's reasons: one on the same line,
// several one per line below.
func printReasons(w io.Writer, head string, err error) {
	reasons := source.Reasons(err)
	if len(reasons) == 1 {
		fmt.Fprintf(w, "%s: %s\n", head, reasons[0])
		return
	}
	fmt.Fprintf(w, "%s:\n", head)
	for _, r := range reasons {
		fmt.Fprintf(w, "      %s\n", r)
	}
}
