package source

import (
	"testing"
	"time"
)

func TestParsePageDate(t *testing.T) {
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Skip("no tzdata:", err)
	}
	tests := []struct {
		in   string
		want string // RFC 3339 in UTC; "" means no date
	}{
		{"2024-06-17T08:00:00+00:00", "2024-06-17T08:00:00Z"},
		{"2024-06-17T08:00:00.123Z", "2024-06-17T08:00:00.123Z"},
		{"2024-06-17T10:00:00+0200", "2024-06-17T08:00:00Z"},
		{"2024-06-17 10:00", "2024-06-17T08:00:00Z"},     // no zone: Paris (summer)
		{"2024-06-17", "2024-06-16T22:00:00Z"},           // midnight in Paris
		{"2024/06/17 08:00 UTC", "2024-06-17T08:00:00Z"}, // named zone
		{"Mon, 17 Jun 2024 08:00:00 GMT", "2024-06-17T08:00:00Z"},
		{"Mon, 17 Jun 2024 10:00:00 +0200", "2024-06-17T08:00:00Z"},
		{"June 17, 2024", "2024-06-16T22:00:00Z"},
		{"Posted on June 16th, 2024 at 9:00", "2024-06-15T22:00:00Z"},
		{"17 Jun. 2024", "2024-06-16T22:00:00Z"},
		{"1st of March 2024", "2024-02-29T23:00:00Z"},
		{"Sept 3, 2024", "2024-09-02T22:00:00Z"},
		{"Updated: 2024-06-17T08:00:00Z by staff", "2024-06-17T08:00:00Z"},
		{"yesterday", ""},
		{"", ""},
		{"June 45, 2024", ""},
		{"2024-13-01", ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, ok := parsePageDate(tt.in, paris)
			if tt.want == "" {
				if ok {
					t.Errorf("parsePageDate(%q) = %s, want no date", tt.in, got)
				}
				return
			}
			if !ok {
				t.Fatalf("parsePageDate(%q): no date, want %s", tt.in, tt.want)
			}
			if s := got.UTC().Format(time.RFC3339Nano); s != tt.want {
				t.Errorf("parsePageDate(%q) = %s, want %s", tt.in, s, tt.want)
			}
		})
	}
}

func FuzzParsePageDate(f *testing.F) {
	for _, s := range []string{"2024-06-17T08:00:00+00:00", "June 16th, 2024", "2024/06/17 08:00 UTC", "Mon, 17 Jun 2024 08:00:00 GMT"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		parsePageDate(s, time.UTC) // must not panic
	})
}
