package preview

import (
	"regexp"
	"strings"
)

// The media features that ForceDark rewrites: a mail client in dark mode
// matches prefers-color-scheme: dark, and no longer matches light.
var (
	darkFeature  = regexp.MustCompile(`(?i)\(\s*prefers-color-scheme\s*:\s*dark\s*\)`)
	lightFeature = regexp.MustCompile(`(?i)\(\s*prefers-color-scheme\s*:\s*light\s*\)`)
	styleBlock   = regexp.MustCompile(`(?is)(<style\b[^>]*>)(.*?)(</style\s*>)`)
	headEnd      = regexp.MustCompile(`(?i)</head\s*>`)
)

// HasDarkStyles reports whether an HTML part has prefers-color-scheme: dark
// rules in its <style> blocks.
func HasDarkStyles(src string) bool {
	for _, m := range styleBlock.FindAllStringSubmatch(src, -1) {
		if darkFeature.MatchString(m[2]) {
			return true
		}
	}
	return false
}

// ForceDark returns the HTML part as a mail client in dark mode applies it:
// in its <style> blocks, the media feature (prefers-color-scheme: dark)
// becomes one that always matches, (prefers-color-scheme: light) one that
// never does, and the page's color-scheme is dark (so that what the
// template leaves unstyled takes the dark defaults, as in Apple Mail). The
// rest of each media query (a width condition) still applies.
func ForceDark(src string) string {
	out := styleBlock.ReplaceAllStringFunc(src, func(block string) string {
		m := styleBlock.FindStringSubmatch(block)
		css := darkFeature.ReplaceAllString(m[2], "(min-width: 0px)")
		css = lightFeature.ReplaceAllString(css, "(max-width: 0px)")
		return m[1] + css + m[3]
	})
	const scheme = `<style>:root { color-scheme: dark; }</style>`
	if loc := headEnd.FindStringIndex(out); loc != nil {
		return out[:loc[0]] + scheme + out[loc[0]:]
	}
	return scheme + out
}

// withBaseTarget makes the links of an HTML part open in a new browser tab
// instead of inside the preview's frame: a <base target="_blank"> at the
// start of <head>, which changes nothing else about how the part renders.
func withBaseTarget(src string) string {
	const base = `<base target="_blank">`
	i := strings.Index(strings.ToLower(src), "<head")
	if i < 0 {
		return base + src
	}
	j := strings.IndexByte(src[i:], '>')
	if j < 0 {
		return base + src
	}
	return src[:i+j+1] + base + src[i+j+1:]
}
