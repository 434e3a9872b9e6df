package fetch

import (
	"io"
	"strings"
	"testing"
	"unicode/utf8"
)

func ioNopCloser(s string) io.ReadCloser { return io.NopCloser(strings.NewReader(s)) }

func TestToUTF8(t *testing.T) {
	tests := []struct {
		name, in, contentType, want string
	}{
		{"ASCII untouched", "plain", "", "plain"},
		{"UTF-8 untouched", "café 日本", "text/html", "café 日本"},
		{"UTF-8 despite a latin-1 header", "café", "text/html; charset=iso-8859-1", "café"},
		{"latin-1 by header", "caf\xe9", "text/plain; charset=ISO-8859-1", "café"},
		{"latin-1 by XML declaration",
			"<?xml version='1.0' encoding='iso-8859-1'?><a>caf\xe9</a>", "application/xml",
			"<?xml version='1.0' encoding='UTF-8'?><a>café</a>"},
		{"UTF-8 body, declaration fixed",
			`<?xml version="1.0" encoding="windows-1252"?><a>café</a>`, "",
			`<?xml version="1.0" encoding="UTF-8"?><a>café</a>`},
		{"wrong utf-8 header, XML declaration decides",
			`<?xml version="1.0" encoding="windows-1252"?><a>5` + "\x80" + `</a>`, "text/xml; charset=utf-8",
			`<?xml version="1.0" encoding="UTF-8"?><a>5€</a>`},
		{"KOI8-R by declaration",
			"<?xml version=\"1.0\" encoding=\"KOI8-R\"?><a>\xf0\xd2\xc9\xd7\xc5\xd4</a>", "",
			"<?xml version=\"1.0\" encoding=\"UTF-8\"?><a>Привет</a>"},
		{"HTML meta charset", "<html><head><meta charset=\"iso-8859-1\"></head><p>\xe9t\xe9</p>", "text/html",
			"<html><head><meta charset=\"iso-8859-1\"></head><p>été</p>"},
		{"unknown label falls back to windows-1252", "caf\xe9", "text/plain; charset=x-nonsense", "café"},
		{"UTF-8 BOM stripped", "\xef\xbb\xbfhello", "", "hello"},
		{"UTF-16LE BOM", "\xff\xfeh\x00i\x00", "", "hi"},
		{"UTF-16BE BOM", "\xfe\xff\x00h\x00i", "", "hi"},
		{"declaration without encoding untouched", `<?xml version="1.0"?><a/>`, "", `<?xml version="1.0"?><a/>`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := string(ToUTF8([]byte(tt.in), tt.contentType))
			if got != tt.want {
				t.Errorf("ToUTF8(%q, %q) = %q, want %q", tt.in, tt.contentType, got, tt.want)
			}
			if !utf8.ValidString(got) {
				t.Errorf("result is not valid UTF-8: %q", got)
			}
		})
	}
}

func FuzzToUTF8(f *testing.F) {
	f.Add([]byte("<?xml version='1.0' encoding='iso-8859-1'?>\xe9"), "text/xml")
	f.Add([]byte("\xff\xfe\x00"), "")
	f.Add([]byte("caf\xe9"), "text/html; charset=shift_jis")
	f.Fuzz(func(t *testing.T, in []byte, ct string) {
		if out := ToUTF8(in, ct); !utf8.Valid(out) {
			t.Fatalf("ToUTF8(%q, %q) = %q: invalid UTF-8", in, ct, out)
		}
	})
}
