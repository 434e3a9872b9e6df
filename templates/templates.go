// Package templates embeds the default digest templates. A file of the same
// name in the configured templates folder overrides the embedded one.
package templates

import "embed"

// FS holds the default templates.
//
//go:embed *.tmpl
var FS embed.FS
