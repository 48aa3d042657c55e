package drill

import (
	"fmt"
	"strings"
)

// SchemaDiff is one schema object that differs between the source and the
// restore: its line on each side, empty on the side that lacks it.
type SchemaDiff struct {
	Source  string `json:"source,omitempty"`
	Restore string `json:"restore,omitempty"`
}

// PairSchemaLines pairs each line missing from the restore with the extra
// restore line that describes the same object (the same kind and name: the
// longest shared run of leading words, at least two), so that a changed
// object shows as its two versions side by side. Lines without a partner
// stay one-sided. The order is the source's, then the restore's leftovers.
func PairSchemaLines(missing, extra []string) []SchemaDiff {
	head := func(l string) string {
		f := strings.Fields(l)
		if len(f) < 2 {
			return l
		}
		return f[0] + " " + f[1]
	}
	byHead := map[string][]int{}
	for i, l := range extra {
		byHead[head(l)] = append(byHead[head(l)], i)
	}
	used := make([]bool, len(extra))
	out := make([]SchemaDiff, 0, len(missing)+len(extra))
	for _, m := range missing {
		best, bestLen := -1, 0
		for _, i := range byHead[head(m)] {
			if n := sharedWords(m, extra[i]); !used[i] && n > bestLen {
				best, bestLen = i, n
			}
		}
		d := SchemaDiff{Source: m}
		if best >= 0 {
			used[best], d.Restore = true, extra[best]
		}
		out = append(out, d)
	}
	for i, l := range extra {
		if !used[i] {
			out = append(out, SchemaDiff{Restore: l})
		}
	}
	return out
}

// sharedWords counts the leading words a and b share.
func sharedWords(a, b string) int {
	fa, fb := strings.Fields(a), strings.Fields(b)
	n := 0
	for n < len(fa) && n < len(fb) && fa[n] == fb[n] {
		n++
	}
	return n
}

// describeSchemaDiffs says in a few words how many objects differ and how:
// "3 places (2 changed, 1 missing from the restore)".
func describeSchemaDiffs(diffs []SchemaDiff) string {
	var changed, missing, extra int
	for _, d := range diffs {
		switch {
		case d.Source != "" && d.Restore != "":
			changed++
		case d.Source != "":
			missing++
		default:
			extra++
		}
	}
	var how []string
	for _, c := range []struct {
		n    int
		what string
	}{{changed, "changed"}, {missing, "missing from the restore"}, {extra, "only in the restore"}} {
		if c.n > 0 {
			how = append(how, fmt.Sprintf("%d %s", c.n, c.what))
		}
	}
	var names []string
	for i, d := range diffs {
		if i == 2 {
			names = append(names, "…")
			break
		}
		names = append(names, d.object())
	}
	return Plural(len(diffs), "place", "places") + " (" + strings.Join(how, ", ") + "): " + strings.Join(names, ", ")
}

// object names what differs in a few words: the words both sides share, or
// the one side's line, clipped.
func (d SchemaDiff) object() string {
	if d.Source != "" && d.Restore != "" {
		f := strings.Fields(d.Source)
		return strings.Join(f[:min(sharedWords(d.Source, d.Restore), 3)], " ")
	}
	l := d.Source + d.Restore
	if r := []rune(l); len(r) > 80 {
		return string(r[:79]) + "…"
	}
	return l
}
