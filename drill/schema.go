package drill

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// SchemaObject is one object of a database's shape: what it is, which one,
// and its definition as the server prints it.
type SchemaObject struct {
	// Kind says what the object is: "column", "constraint", "index",
	// "invalid index", "view", "materialized view", "function", "policy", ...
	Kind string `json:"kind"`
	// Name identifies the object among those of its kind, schema-qualified
	// (for objects of a table, the table then the object's own name). It
	// survives a dump/restore round trip unchanged.
	Name string `json:"name"`
	// Def is the object's definition as the server printed it (for
	// functions, a hash of the normalised body). Printed definitions are not
	// a fixpoint of dump and restore; Compare matches them normalised.
	Def string `json:"def,omitempty"`
}

// Key identifies the object: its kind and name.
func (o SchemaObject) Key() string { return o.Kind + " " + o.Name }

// String is the object in one line: kind, name, definition.
func (o SchemaObject) String() string {
	if o.Def == "" {
		return o.Key()
	}
	return o.Key() + " " + o.Def
}

// UnmarshalJSON also reads the one-line strings fingerprints held before
// objects had parts; such an object has no Kind.
func (o *SchemaObject) UnmarshalJSON(data []byte) error {
	var line string
	if err := json.Unmarshal(data, &line); err == nil {
		*o = SchemaObject{Name: line}
		return nil
	}
	type plain SchemaObject
	return json.Unmarshal(data, (*plain)(o))
}

// SchemaDiff is one schema object that differs between a source and its
// restore, with both sides as one line each ("" for a side that lacks it).
type SchemaDiff struct {
	Kind     string `json:"kind"`
	Name     string `json:"name"`
	Source   string `json:"source,omitempty"`
	Restored string `json:"restored,omitempty"`
}

// Problem says in a few words what differs.
func (d SchemaDiff) Problem() string {
	switch {
	case d.Restored == "":
		return "missing from the restore"
	case d.Source == "":
		return "only in the restore"
	}
	return "changed"
}

// String names the object and says what differs.
func (d SchemaDiff) String() string { return d.Kind + " " + d.Name + " " + d.Problem() }

// schemaComparison is what comparing two schemas found.
type schemaComparison struct {
	diffs []SchemaDiff
	notes []string
}

// compareSchema matches the objects of src and dst by kind and name and
// compares their definitions normalised (NormalizeDefinition). An invalid
// index of the source, which pg_dump leaves out, is a note when missing.
func compareSchema(src, dst []SchemaObject) schemaComparison {
	var out schemaComparison
	if legacy(src) || legacy(dst) {
		// A fingerprint stored by an older version holds one-line objects
		// whose format differs: matching them would fail every object.
		out.notes = append(out.notes, "the schema was not compared: the backup's fingerprint was stored by an older restore-drill, in a form that cannot be matched object by object (a fresh drill compares it)")
		return out
	}
	restored := make(map[string]SchemaObject, len(dst))
	for _, o := range dst {
		restored[o.Key()] = o
	}
	seen := make(map[string]bool, len(src))
	for _, s := range src {
		seen[s.Key()] = true
		r, ok := restored[s.Key()]
		switch {
		case !ok && s.Kind == KindInvalidIndex:
			out.notes = append(out.notes, fmt.Sprintf("index %s is invalid in the source (a failed CREATE INDEX CONCURRENTLY?): pg_dump leaves invalid indexes out, so the restore lacks it; rebuild it on the source", s.Name))
		case !ok:
			out.diffs = append(out.diffs, SchemaDiff{Kind: s.Kind, Name: s.Name, Source: s.String()})
		case NormalizeDefinition(s.Def) != NormalizeDefinition(r.Def):
			out.diffs = append(out.diffs, SchemaDiff{Kind: s.Kind, Name: s.Name, Source: s.String(), Restored: r.String()})
		}
	}
	for _, r := range dst {
		if !seen[r.Key()] {
			out.diffs = append(out.diffs, SchemaDiff{Kind: r.Kind, Name: r.Name, Restored: r.String()})
		}
	}
	sort.SliceStable(out.diffs, func(i, j int) bool {
		a, b := out.diffs[i], out.diffs[j]
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
		return a.Name < b.Name
	})
	return out
}

// KindInvalidIndex is the kind of an index that is not valid (pg_index
// indisvalid false, left by a failed CREATE INDEX CONCURRENTLY).
const KindInvalidIndex = "invalid index"

func legacy(objs []SchemaObject) bool {
	for _, o := range objs {
		if o.Kind == "" {
			return true
		}
	}
	return false
}

// NormalizeDefinition reduces a definition PostgreSQL printed to what
// survives a dump/restore round trip: re-parsing printed text and printing
// it again moves casts ('a'::varchar)::text against ARRAY[...]::text[]),
// parentheses (BETWEEN inside AND) and the case of keywords. So casts
// (::type), parentheses and the case of everything but quoted identifiers
// and string literals are dropped, and whitespace is collapsed. Literals,
// names, operators and keywords remain, so a changed constant, column,
// condition or operator still shows.
func NormalizeDefinition(def string) string {
	toks := tokens(def)
	out := make([]string, 0, len(toks))
	for i := 0; i < len(toks); i++ {
		t := toks[i]
		switch {
		case t == "::":
			i = skipTypeName(toks, i+1) - 1
		case t == "(" || t == ")":
		case t[0] == '\'' || t[0] == '"' || (len(t) > 1 && (t[0] == 'E' || t[0] == 'e') && t[1] == '\''):
			out = append(out, t)
		default:
			out = append(out, strings.ToLower(t))
		}
	}
	return strings.Join(out, " ")
}

// typeTail returns how many tokens at toks[i:] continue a type name: the
// further words of character varying, double precision, timestamp with time
// zone, interval day to second and the like.
func typeTail(toks []string, i int) int {
	at := func(k int) string {
		if i+k < len(toks) {
			return strings.ToLower(toks[i+k])
		}
		return ""
	}
	switch w := at(0); {
	case w == "varying" || w == "precision":
		return 1
	case (w == "with" || w == "without") && at(1) == "time" && at(2) == "zone":
		return 3
	case isIntervalField(w) && at(1) == "to" && isIntervalField(at(2)):
		return 3
	case isIntervalField(w):
		return 1
	}
	return 0
}

func isIntervalField(w string) bool {
	switch w {
	case "year", "month", "day", "hour", "minute", "second":
		return true
	}
	return false
}

// skipTypeName returns the index of the first token after the type name
// starting at toks[i]: a possibly qualified, possibly quoted name, further
// words of a multi-word name, a type modifier in parentheses and array
// brackets.
func skipTypeName(toks []string, i int) int {
	if i >= len(toks) {
		return i
	}
	i++ // the name
	for i+1 < len(toks) && toks[i] == "." {
		i += 2
	}
	i += typeTail(toks, i)
	if i < len(toks) && toks[i] == "(" {
		depth := 0
		for ; i < len(toks); i++ {
			if toks[i] == "(" {
				depth++
			} else if toks[i] == ")" {
				depth--
				if depth == 0 {
					i++
					break
				}
			}
		}
		i += typeTail(toks, i) // timestamp(3) with time zone
	}
	for i+1 < len(toks) && toks[i] == "[" && toks[i+1] == "]" {
		i += 2
	}
	return i
}

// tokens splits SQL text into string literals, quoted identifiers, words,
// the cast operator, parentheses and brackets, and runs of other operator
// characters. Whitespace separates tokens and is dropped.
func tokens(s string) []string {
	var out []string
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '\'' || ((c == 'E' || c == 'e') && i+1 < len(s) && s[i+1] == '\''):
			j := i
			if c != '\'' {
				j++
			}
			j = endQuoted(s, j, '\'', c != '\'')
			out = append(out, s[i:j])
			i = j
		case c == '"':
			j := endQuoted(s, i, '"', false)
			out = append(out, s[i:j])
			i = j
		case c == ':' && i+1 < len(s) && s[i+1] == ':':
			out = append(out, "::")
			i += 2
		case strings.IndexByte("()[],.;", c) >= 0:
			out = append(out, s[i:i+1])
			i++
		case isWordByte(c):
			j := i
			for j < len(s) && isWordByte(s[j]) {
				j++
			}
			out = append(out, s[i:j])
			i = j
		default:
			j := i
			for j < len(s) && !isWordByte(s[j]) && strings.IndexByte(" \t\n\r'\"()[],.;", s[j]) < 0 && !(s[j] == ':' && j+1 < len(s) && s[j+1] == ':') {
				j++
			}
			if j == i {
				j++
			}
			out = append(out, s[i:j])
			i = j
		}
	}
	return out
}

// endQuoted returns the index just past the quoted token opening at s[i]
// with quote q; a doubled quote is part of it, and with backslashes so is a
// backslash-escaped character.
func endQuoted(s string, i int, q byte, backslashes bool) int {
	for j := i + 1; j < len(s); j++ {
		switch {
		case backslashes && s[j] == '\\':
			j++
		case s[j] == q && j+1 < len(s) && s[j+1] == q:
			j++
		case s[j] == q:
			return j + 1
		}
	}
	return len(s)
}

func isWordByte(c byte) bool {
	return c == '_' || c == '$' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80
}
