package source

import (
	"regexp"
	"strings"
	"time"
)

// Dates on web pages come in many shapes; these patterns find the common
// ones inside surrounding words ("Published on June 17th, 2024 at 8:00").
var (
	isoDate = regexp.MustCompile(`\d{4}[-/]\d{2}[-/]\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:\s?(?:Z|[+-]\d{2}:?\d{2}|UTC|GMT))?)?`)
	// month day, year | day month year, with the month written out or
	// abbreviated.
	monthFirst = regexp.MustCompile(`(?i)\b(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?\s+(\d{1,2})(?:st|nd|rd|th)?,?\s+(\d{4})\b`)
	dayFirst   = regexp.MustCompile(`(?i)\b(\d{1,2})(?:st|nd|rd|th)?\.?\s+(?:of\s+)?(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?,?\s+(\d{4})\b`)
)

// wholeLayouts are tried on the whole (trimmed) string first.
var wholeLayouts = []string{
	time.RFC3339Nano, time.RFC1123Z, time.RFC1123, time.RFC850, time.RFC822Z, time.RFC822,
	time.ANSIC, time.UnixDate, "Mon, 2 Jan 2006 15:04:05 -0700", "Mon, 2 Jan 2006 15:04:05 MST",
	"2 Jan 2006 15:04:05 -0700",
}

// isoLayouts parse what isoDate finds, after '/' became '-' and ' ' 'T'.
var isoLayouts = []string{
	"2006-01-02T15:04:05Z07:00", "2006-01-02T15:04:05Z0700", "2006-01-02T15:04Z07:00",
	"2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02",
}

// parsePageDate finds and parses a date in s: an ISO 8601 / RFC 3339 form
// (with or without time and zone), an RFC 1123/822 (HTTP, RSS) form, or a
// written one such as "June 17, 2024", "17 Jun 2024" or "Jun 17th 2024". A
// date or time without a zone is in loc. ok is false when s holds none of
// these.
func parsePageDate(s string, loc *time.Location) (time.Time, bool) {
	s = strings.Join(strings.Fields(s), " ")
	if s == "" {
		return time.Time{}, false
	}
	for _, l := range wholeLayouts {
		if t, err := time.ParseInLocation(l, s, loc); err == nil {
			return t, true
		}
	}
	if m := isoDate.FindString(s); m != "" {
		m = strings.ReplaceAll(m, "/", "-")
		if len(m) > 10 && m[10] == ' ' {
			m = m[:10] + "T" + m[11:]
		}
		if strings.HasSuffix(m, "UTC") || strings.HasSuffix(m, "GMT") {
			m = strings.TrimSpace(m[:len(m)-3]) + "Z"
		}
		m = strings.Replace(strings.Replace(m, ",", ".", 1), " ", "", 1) // "08:00 +02:00"
		for _, l := range isoLayouts {
			if t, err := time.ParseInLocation(l, m, loc); err == nil {
				return t, true
			}
		}
	}
	var month, day, year string
	if m := monthFirst.FindStringSubmatch(s); m != nil {
		month, day, year = m[1], m[2], m[3]
	} else if m := dayFirst.FindStringSubmatch(s); m != nil {
		day, month, year = m[1], m[2], m[3]
	} else {
		return time.Time{}, false
	}
	month = strings.ToUpper(month[:1]) + strings.ToLower(month[1:])
	t, err := time.ParseInLocation("Jan 2 2006", month+" "+day+" "+year, loc)
	return t, err == nil
}
