package config

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// walker checks a YAML tree against the Go type it will be decoded into,
// before yaml.v3 decodes it: every mapping key must name a field (the yaml
// tag), every scalar must parse as its field's type, and every scalar value
// is expanded for ${VAR} in place. It records the line of every key path so
// that validation errors can name it.
//
// Expansion happens on parsed scalar values, never on the raw text, so a
// value that comes from the environment (a secret containing ": " or a
// newline, say) stays one scalar and cannot add keys.
type walker struct {
	lookup   LookupFunc
	lines    map[string]int
	expanded map[*yaml.Node]bool // an anchored node reached twice is expanded once
	errs     []error
}

const maxErrors = 20

var unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()

func (w *walker) errorf(line int, path, format string, args ...any) {
	if len(w.errs) == maxErrors {
		w.errs = append(w.errs, errors.New("too many errors"))
	}
	if len(w.errs) > maxErrors {
		return
	}
	w.errs = append(w.errs, fmt.Errorf("line %d: %s: %s", line, path, fmt.Sprintf(format, args...)))
}

func (w *walker) walk(n *yaml.Node, t reflect.Type, path string) {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if _, seen := w.lines[path]; !seen {
		w.lines[path] = n.Line
	}
	if isNull(n) {
		return // an empty value leaves the default
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		w.scalar(n, t, path)
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			w.errorf(n.Line, path, "want a mapping of keys to values, got %s", kindName(n))
			return
		}
		w.structMapping(n, t, path, map[string]int{})
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			w.errorf(n.Line, path, "want a mapping of names to values, got %s", kindName(n))
			return
		}
		seen := map[string]int{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode || k.Value == "" {
				w.errorf(k.Line, path, "want a non-empty name as key")
				continue
			}
			if l, dup := seen[k.Value]; dup {
				w.errorf(k.Line, path, "%q is defined twice (first at line %d)", k.Value, l)
				continue
			}
			seen[k.Value] = k.Line
			p := path + "." + k.Value
			w.lines[p] = k.Line
			w.walk(v, t.Elem(), p)
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			w.errorf(n.Line, path, "want a list, got %s", kindName(n))
			return
		}
		for i, e := range n.Content {
			w.walk(e, t.Elem(), path+"["+strconv.Itoa(i)+"]")
		}
	default:
		w.scalar(n, t, path)
	}
}

// structMapping checks the keys of mapping n against the fields of struct
// type t. A merge key ("<<: *anchor") merges the keys of another mapping,
// which are checked against the same struct.
func (w *walker) structMapping(n *yaml.Node, t reflect.Type, path string, seen map[string]int) {
	fields := yamlFields(t)
	var merges []*yaml.Node
	kept := n.Content[:0:0]
	defer func() { n.Content = kept }()
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if !isNull(v) {
			// An empty value ("limits:") leaves the defaults, where the
			// decoder would zero them.
			kept = append(kept, k, v)
		}
		if k.Kind != yaml.ScalarNode {
			w.errorf(k.Line, path, "want a key name, got %s", kindName(k))
			continue
		}
		if k.Value == "<<" && k.ShortTag() == "!!merge" {
			merges = append(merges, v)
			continue
		}
		p := joinPath(path, k.Value)
		ft, ok := fields[k.Value]
		if !ok {
			w.errorf(k.Line, p, "unknown key %q%s", k.Value, suggest(k.Value, fields))
			continue
		}
		if l, dup := seen[k.Value]; dup {
			if l < 0 {
				continue // merged, and overridden by an explicit key
			}
			w.errorf(k.Line, p, "key %q is set twice (first at line %d)", k.Value, l)
			continue
		}
		seen[k.Value] = k.Line
		w.lines[p] = k.Line
		w.walk(v, ft, p)
	}
	// Explicit keys win over merged ones, as in yaml.v3's decoder.
	for _, m := range merges {
		for m.Kind == yaml.AliasNode && m.Alias != nil {
			m = m.Alias
		}
		switch m.Kind {
		case yaml.MappingNode:
			w.structMapping(m, t, path, mergeSeen(seen))
		case yaml.SequenceNode:
			for _, e := range m.Content {
				for e.Kind == yaml.AliasNode && e.Alias != nil {
					e = e.Alias
				}
				if e.Kind != yaml.MappingNode {
					w.errorf(e.Line, path, "<< merges only mappings")
					continue
				}
				w.structMapping(e, t, path, mergeSeen(seen))
			}
		default:
			w.errorf(m.Line, path, "<< merges only mappings")
		}
	}
}

// mergeSeen returns a seen set for a merged mapping: its keys may repeat the
// explicit ones (these win) but not each other.
func mergeSeen(seen map[string]int) map[string]int {
	m := make(map[string]int, len(seen))
	for k := range seen {
		m[k] = -1
	}
	return m
}

// scalar expands a scalar's ${VAR} references and checks that the result
// parses as t, so that a bad value is reported with its line and key.
func (w *walker) scalar(n *yaml.Node, t reflect.Type, path string) {
	if n.Kind != yaml.ScalarNode {
		w.errorf(n.Line, path, "want a single value, got %s", kindName(n))
		return
	}
	if !w.expanded[n] {
		w.expanded[n] = true
		v, err := expand(n.Value, w.lookup)
		if err != nil {
			w.errorf(n.Line, path, "%v", err)
			return
		}
		if v != n.Value {
			n.Value = v
			if t.Kind() == reflect.String {
				n.Tag = "!!str" // a secret of "123" or "null" stays a string
			} else {
				n.Tag, n.Style = "", 0 // "${PATH_STYLE}" may resolve to a bool
			}
		}
	}
	if t.Kind() == reflect.String && !reflect.PointerTo(t).Implements(unmarshalerType) {
		return // any scalar is a string; never echo it, it may be a secret
	}
	if err := n.Decode(reflect.New(t).Interface()); err != nil {
		if reflect.PointerTo(t).Implements(unmarshalerType) {
			w.errorf(n.Line, path, "%v", err) // Size and Duration errors name the value
			return
		}
		switch t.Kind() {
		case reflect.Bool:
			w.errorf(n.Line, path, "want true or false")
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
			reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
			w.errorf(n.Line, path, "want a whole number")
		default:
			w.errorf(n.Line, path, "%s", strings.TrimPrefix(err.Error(), "yaml: "))
		}
	}
}

// yamlFields maps the yaml names of t's fields to their types.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	m := make(map[string]reflect.Type, t.NumField())
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if !f.IsExported() || name == "-" {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		m[name] = f.Type
	}
	return m
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return "a single value"
	}
	return "nothing"
}

// suggest returns ` (did you mean "x"?)` for the known key closest to key,
// or "" when none is close.
func suggest(key string, fields map[string]reflect.Type) string {
	names := make([]string, 0, len(fields))
	for name := range fields {
		names = append(names, name)
	}
	slices.Sort(names)
	best, bestD := "", len(key)/3+2
	for _, name := range names {
		if d := editDistance(strings.ToLower(key), name); d < bestD {
			best, bestD = name, d
		}
	}
	if best == "" {
		return fmt.Sprintf(" (valid keys: %s)", strings.Join(names, ", "))
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// editDistance is the Levenshtein distance of a and b, counting an adjacent
// transposition as one edit (a common typo).
func editDistance(a, b string) int {
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}

// isNull reports whether n (or what it aliases) is an empty value or null.
func isNull(n *yaml.Node) bool {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}
