package config

import (
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

var durationType = reflect.TypeFor[time.Duration]()

// decoder walks a yaml.Node tree against the yaml tags of a Go value,
// collecting every problem instead of stopping at the first.
type decoder struct {
	file     string
	lines    map[string]int // dotted key → line of the key in the file
	problems []error

	// Aliases can make a small file expand without bound ("billion laughs")
	// or refer to themselves: the walk stops after maxSteps nodes and
	// refuses an alias to a node it is already inside.
	steps     int
	expanding map[*yaml.Node]bool
}

// maxSteps bounds the nodes visited, aliases expanded; real files need
// a few hundred.
const maxSteps = 100_000

// budget counts one visited node and reports whether the walk may go on.
func (d *decoder) budget(n *yaml.Node) bool {
	d.steps++
	if d.steps == maxSteps+1 {
		d.addf(n.Line, "", "too many nodes once aliases are expanded (more than %d)", maxSteps)
	}
	return d.steps <= maxSteps
}

// alias decodes the target of alias node n, unless that would loop.
func (d *decoder) alias(n *yaml.Node, key string, decode func(*yaml.Node)) {
	if d.expanding[n.Alias] {
		d.addf(n.Line, key, "alias *%s refers to a node that contains it", n.Value)
		return
	}
	if d.expanding == nil {
		d.expanding = map[*yaml.Node]bool{}
	}
	d.expanding[n.Alias] = true
	decode(n.Alias)
	delete(d.expanding, n.Alias)
}

func (d *decoder) addf(line int, key, format string, args ...any) {
	d.problems = append(d.problems, problem{file: d.file, line: line, key: key, msg: fmt.Sprintf(format, args...)})
}

func addressable[T any](p *T) reflect.Value { return reflect.ValueOf(p).Elem() }

func joinKey(parent, name string) string {
	if parent == "" {
		return name
	}
	return parent + "." + name
}

// kindName describes a node for "expected X, got Y" messages.
func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return strconv.Quote(n.Value)
	}
	return "nothing"
}

func (d *decoder) decode(n *yaml.Node, v reflect.Value, key string) {
	if !d.budget(n) {
		return
	}
	if n.Kind == yaml.AliasNode {
		d.alias(n, key, func(t *yaml.Node) { d.decode(t, v, key) })
		return
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return // "key:" with no value keeps the default
	}
	if v.Type() == durationType {
		d.duration(n, v, key)
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		d.decodeStruct(n, v, key)
	case reflect.Slice:
		d.list(n, v, key)
	case reflect.String, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Float32, reflect.Float64, reflect.Bool:
		d.scalar(n, v, key)
	case reflect.Pointer:
		d.decodeOptional(n, v, key)
	default:
		// A field type this walker does not know: let yaml.v3 decode it.
		if err := n.Decode(v.Addr().Interface()); err != nil {
			d.addf(n.Line, key, "%s", strings.TrimPrefix(err.Error(), "yaml: "))
		}
	}
}

func (d *decoder) duration(n *yaml.Node, v reflect.Value, key string) {
	if n.Kind != yaml.ScalarNode {
		d.addf(n.Line, key, "expected a duration such as \"168h\", got %s", kindName(n))
		return
	}
	dur, err := parseDuration(n.Value)
	if err != nil {
		d.addf(n.Line, key, "%q is not a duration (use e.g. \"168h\", \"20s\" or \"7d\")", n.Value)
		return
	}
	v.SetInt(int64(dur))
}

func (d *decoder) list(n *yaml.Node, v reflect.Value, key string) {
	if n.Kind != yaml.SequenceNode {
		d.addf(n.Line, key, "expected a list, got %s", kindName(n))
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		ik := fmt.Sprintf("%s[%d]", key, i)
		d.lines[ik] = item.Line
		d.decode(item, s.Index(i), ik)
	}
	v.Set(s)
}

// scalar decodes a string, integer, number or boolean, naming what was
// expected when n is not one.
func (d *decoder) scalar(n *yaml.Node, v reflect.Value, key string) {
	var want string
	ok := n.Kind == yaml.ScalarNode
	switch v.Kind() {
	case reflect.String:
		want = "a string"
		if ok {
			v.SetString(n.Value)
		}
	case reflect.Float32, reflect.Float64:
		want = "a number"
		var f float64
		if ok = ok && n.Decode(&f) == nil; ok {
			v.SetFloat(f)
		}
	case reflect.Bool:
		want = "true or false"
		var b bool
		if ok = ok && n.Decode(&b) == nil; ok {
			v.SetBool(b)
		}
	default: // the integer kinds
		want = "an integer"
		var i int64
		if ok = ok && n.Decode(&i) == nil && !v.OverflowInt(i); ok {
			v.SetInt(i)
		}
	}
	if !ok {
		d.addf(n.Line, key, "expected %s, got %s", want, kindName(n))
	}
}

// decodeOptional decodes an optional value (a pointer field, nil when the
// key is left out): set only when written, and written well.
func (d *decoder) decodeOptional(n *yaml.Node, v reflect.Value, key string) {
	e := reflect.New(v.Type().Elem())
	before := len(d.problems)
	d.decode(n, e.Elem(), key)
	if len(d.problems) == before {
		v.Set(e)
	}
}

// field is one yaml-tagged field of a struct.
type field struct {
	name  string
	index int
}

// fieldsOf lists the yaml keys of struct type t, in declaration order.
func fieldsOf(t reflect.Type) []field {
	var fs []field
	for i := range t.NumField() {
		sf := t.Field(i)
		if !sf.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = strings.ToLower(sf.Name)
		}
		fs = append(fs, field{name: name, index: i})
	}
	return fs
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, key string) {
	if n.Kind != yaml.MappingNode {
		what := "a mapping"
		if key == "" {
			what = "a mapping of keys at the top level"
		}
		d.addf(n.Line, key, "expected %s, got %s", what, kindName(n))
		return
	}
	fields := fieldsOf(v.Type())
	seen := map[string]int{} // key → line of its first occurrence
	for i := 0; i+1 < len(n.Content); i += 2 {
		kn, vn := n.Content[i], n.Content[i+1]
		if kn.Kind != yaml.ScalarNode {
			d.addf(kn.Line, key, "a key must be a plain name, got %s", kindName(kn))
			continue
		}
		if kn.Value == "<<" && kn.ShortTag() == "!!merge" {
			d.decodeMerge(vn, v, key)
			continue
		}
		if strings.HasPrefix(kn.Value, "x-") {
			continue // extension keys hold YAML anchors for reuse, as in Compose files
		}
		k := joinKey(key, kn.Value)
		if first, dup := seen[kn.Value]; dup {
			d.addf(kn.Line, k, "duplicate key (first at line %d)", first)
			continue
		}
		seen[kn.Value] = kn.Line
		j := slices.IndexFunc(fields, func(f field) bool { return f.name == kn.Value })
		if j < 0 {
			d.addf(kn.Line, k, "unknown key%s", suggest(kn.Value, fields))
			continue
		}
		d.lines[k] = kn.Line
		d.decode(vn, v.Field(fields[j].index), k)
	}
}

// decodeMerge applies a YAML merge key ("<<: *base") to a struct.
func (d *decoder) decodeMerge(n *yaml.Node, v reflect.Value, key string) {
	if !d.budget(n) {
		return
	}
	if n.Kind == yaml.AliasNode {
		d.alias(n, key, func(t *yaml.Node) { d.decodeMerge(t, v, key) })
		return
	}
	if n.Kind == yaml.SequenceNode {
		for _, m := range n.Content {
			d.decodeMerge(m, v, key)
		}
		return
	}
	d.decodeStruct(n, v, key)
}

// suggest returns ` (did you mean "x"?)` for the known key nearest to name,
// or the list of known keys when none is near.
func suggest(name string, fields []field) string {
	norm := func(s string) string { return strings.ReplaceAll(strings.ToLower(s), "-", "_") }
	best, bestDist := "", -1
	for _, f := range fields {
		dist := editDistance(norm(name), f.name)
		if bestDist < 0 || dist < bestDist {
			best, bestDist = f.name, dist
		}
	}
	limit := 1
	switch n := len([]rune(name)); {
	case n > 8:
		limit = 3
	case n > 4:
		limit = 2
	}
	if bestDist >= 0 && bestDist <= limit {
		return fmt.Sprintf(" (did you mean %q?)", best)
	}
	names := make([]string, len(fields))
	for i, f := range fields {
		names[i] = f.name
	}
	return " (known keys: " + strings.Join(names, ", ") + ")"
}

// editDistance is the optimal string alignment distance between a and b:
// insertions, deletions, substitutions and transpositions of adjacent
// characters each cost 1.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	// rows i-2, i-1 and i of the dynamic programming table
	prev2 := make([]int, len(rb)+1)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(rb)]
}

// maxDays keeps a day count within time.Duration's range (about 292 years).
const maxDays = 100_000

// parseDuration accepts Go durations ("168h", "1h30m", "20s") and a leading
// whole or decimal number of days ("7d", "1d12h").
func parseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	days, rest, ok := strings.Cut(s, "d")
	if !ok {
		return time.ParseDuration(s)
	}
	n, err := strconv.ParseFloat(days, 64)
	if err != nil || days == "" || strings.ContainsAny(days, "eEnNiIxX_") || math.Abs(n) > maxDays {
		return 0, fmt.Errorf("invalid duration %q", s)
	}
	d := time.Duration(n * float64(24*time.Hour))
	if rest != "" {
		if rest[0] == '-' || rest[0] == '+' {
			return 0, fmt.Errorf("invalid duration %q", s)
		}
		r, err := time.ParseDuration(rest)
		if err != nil {
			return 0, fmt.Errorf("invalid duration %q", s)
		}
		if n < 0 {
			r = -r
		}
		d += r
	}
	return d, nil
}
