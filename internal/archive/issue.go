package archive

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/digest/digest/internal/atomicfile"
	"github.com/digest/digest/internal/issue"
)

// The files of one issue's folder, <archive>/<issue id>/.
const (
	IssueFile = "issue.json"  // the issue as selected: what send renders again
	HTMLFile  = "digest.html" // the web version (no reader's name, a generic unsubscribe page)
	TextFile  = "digest.txt"
)

// Dir is the folder of issue id in the archive dir.
func Dir(dir, id string) string { return filepath.Join(dir, id) }

// Save writes the folder of iss: issue.json and the web version's
// digest.html and digest.txt, each atomically. It returns the folder. It
// does not rewrite the index and feed: call Write for that.
func Save(dir string, iss issue.Issue, html, text string) (string, error) {
	d := Dir(dir, iss.ID)
	if err := os.MkdirAll(d, 0o755); err != nil {
		return "", fmt.Errorf("archive: %w", err)
	}
	meta, err := json.MarshalIndent(iss, "", "  ")
	if err != nil {
		return "", fmt.Errorf("archive: issue %s: %w", iss.ID, err)
	}
	for _, f := range []struct {
		name string
		data []byte
	}{
		{HTMLFile, []byte(html)},
		{TextFile, []byte(text)},
		{IssueFile, append(meta, '\n')},
	} {
		if err := atomicfile.Write(filepath.Join(d, f.name), f.data, 0o644, nil); err != nil {
			return "", fmt.Errorf("archive: %w", err)
		}
	}
	return d, nil
}

// Load reads issue id back from its folder. The error wraps os.ErrNotExist
// when the issue was never saved.
func Load(dir, id string) (issue.Issue, error) {
	return readIssue(filepath.Join(Dir(dir, id), IssueFile))
}

// readIssue reads and parses one issue.json.
func readIssue(path string) (issue.Issue, error) {
	var iss issue.Issue
	raw, err := os.ReadFile(path)
	if err != nil {
		return iss, fmt.Errorf("archive: %w", err)
	}
	if err := json.Unmarshal(raw, &iss); err != nil {
		return iss, fmt.Errorf("archive: %s: %w", path, err)
	}
	return iss, nil
}
