package cli_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/digest/digest/internal/cli"
)

// TestHelpAndUsageErrors: --help on any command (and digest help CMD)
// prints that command's usage and flags and exits 0; a usage error prints
// the one line at fault and where to read more, not the whole usage.
func TestHelpAndUsageErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args       []string
		code       int
		out, err   string
		notInError string
	}{
		{[]string{"daemon", "--help"}, 0, "digest daemon", "", ""},
		{[]string{"send", "-h"}, 0, "-dry-run", "", ""},
		{[]string{"subscribers", "add", "--help"}, 0, "-topics", "", ""},
		{[]string{"help", "send"}, 0, "-worker", "", ""},
		{[]string{"help", "subscribers"}, 0, "digest subscribers export", "", ""},
		{[]string{"subscribers", "--help"}, 0, "digest subscribers import", "", ""},
		{[]string{"help", "frob"}, 2, "", `unknown command "frob"`, "Usage:"},
		{[]string{"send", "--bogus"}, 2, "", "-bogus\nRun \"digest help send\" for its usage.\n", "Usage:"},
		{[]string{"--config", "x.yaml", "subscribers", "add"}, 2, "", `Run "digest help subscribers add"`, "Usage:"},
		{[]string{"frob"}, 2, "", `Run "digest help" for the commands.`, "Usage:"},
	}
	for _, tt := range tests {
		var out, errb bytes.Buffer
		err := cli.Run(context.Background(), tt.args, &out, &errb)
		if got := cli.ExitCode(err); got != tt.code {
			t.Errorf("%q: exit %d, want %d (%v)", tt.args, got, tt.code, err)
		}
		if !strings.Contains(out.String(), tt.out) || !strings.Contains(errb.String(), tt.err) {
			t.Errorf("%q: stdout lacks %q or stderr lacks %q:\n%s\n--\n%s", tt.args, tt.out, tt.err, out.String(), errb.String())
		}
		if tt.notInError != "" && strings.Contains(errb.String(), tt.notInError) {
			t.Errorf("%q: stderr has the whole usage:\n%s", tt.args, errb.String())
		}
		if tt.code == 0 && errb.Len() > 0 {
			t.Errorf("%q: help wrote to stderr: %s", tt.args, errb.String())
		}
	}
}
