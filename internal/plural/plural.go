// Package plural writes counts with their noun: "1 story", "3 stories".
// It is the one rule for the counts that commands, logs and errors print
// (the preview's page, which separates thousands, has its own).
package plural

import "strconv"

// N returns n followed by one when n is 1, else by many.
func N(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}
