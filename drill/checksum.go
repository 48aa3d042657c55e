package drill

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Fingerprint describes a database's content and shape, computed inside
// Postgres so that no row crosses the network. Two fingerprints taken of the
// same data under the same session settings are equal, whatever the physical
// row order.
type Fingerprint struct {
	// Tables holds one entry per table that holds rows (ordinary tables and
	// the leaf partitions of partitioned ones), sorted by schema then name.
	Tables []TableSum `json:"tables"`
	// Sequences holds the position of every sequence, sorted by name.
	Sequences []SequenceState `json:"sequences"`
	// Schema holds one line per schema object that counts (columns and their
	// types, constraints, indexes, enum labels, domains, ...), sorted. Two
	// databases with the same Schema lines have the same shape.
	Schema []string `json:"schema"`
}

// TableSum is one table's row count and order-independent content hash.
type TableSum struct {
	Schema string `json:"schema"`
	Name   string `json:"name"`
	Rows   int64  `json:"rows"`
	// Hash is the sum of a 64-bit hash of every row's text form, as a decimal
	// string (the sum is kept in numeric, so it never overflows).
	Hash string `json:"hash"`
}

// Key is the table's qualified, quoted name, as Postgres would print it.
func (t TableSum) Key() string { return QuoteIdent(t.Schema) + "." + QuoteIdent(t.Name) }

// SequenceState is a sequence's position.
type SequenceState struct {
	Schema    string `json:"schema"`
	Name      string `json:"name"`
	LastValue int64  `json:"last_value"`
	IsCalled  bool   `json:"is_called"`
	// Increment is the step; a negative one counts down.
	Increment int64 `json:"increment,omitempty"`
}

// Key is the sequence's qualified, quoted name.
func (s SequenceState) Key() string { return QuoteIdent(s.Schema) + "." + QuoteIdent(s.Name) }

// next is the value nextval would hand out next.
func (s SequenceState) next() int64 {
	if !s.IsCalled {
		return s.LastValue
	}
	if s.Increment == 0 {
		return s.LastValue + 1
	}
	return s.LastValue + s.Increment
}

// behind reports whether restored r would hand out a value source s already
// did: lower for a sequence counting up, higher for one counting down.
func (s SequenceState) behind(r SequenceState) bool {
	if s.Increment < 0 {
		return r.next() > s.next()
	}
	return r.next() < s.next()
}

// QuoteIdent quotes a Postgres identifier the way quote_ident does when it
// must: always, so that mixed case, spaces and non-ASCII survive.
func QuoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// Freshness is the newest value of one timestamp column: how recent a
// restored database's data is.
type Freshness struct {
	Schema string    `json:"schema"`
	Table  string    `json:"table"`
	Column string    `json:"column"`
	Newest time.Time `json:"newest"`
}

// Freshener is implemented by providers that can say how recent a
// database's data is (its newest timestamps).
type Freshener interface {
	Freshness(ctx context.Context, db Database) ([]Freshness, error)
}

// TableResult compares one table across source and restore.
type TableResult struct {
	Schema       string `json:"schema"`
	Name         string `json:"name"`
	SourceRows   int64  `json:"source_rows"`
	RestoredRows int64  `json:"restored_rows"`
	SourceHash   string `json:"source_hash"`
	RestoredHash string `json:"restored_hash"`
	// Match is true when both sides hold the same rows.
	Match bool `json:"match"`
	// Problem says in words what differs; empty when Match.
	Problem string `json:"problem,omitempty"`
	// Drift is true when the comparison is not exact and the difference is
	// one that writes since the fingerprint can explain.
	Drift bool `json:"drift,omitempty"`
}

// Comparison is the outcome of comparing a source fingerprint with the
// fingerprint of its restore.
type Comparison struct {
	// Exact is true when both fingerprints describe the very same data (one
	// snapshot, or production in maintenance). When false, row differences
	// are drift to show, not failures.
	Exact  bool          `json:"exact"`
	Tables []TableResult `json:"tables"`
	// SchemaMissing lists schema lines of the source absent from the restore;
	// SchemaExtra the restore's lines absent from the source.
	SchemaMissing []string `json:"schema_missing,omitempty"`
	SchemaExtra   []string `json:"schema_extra,omitempty"`
	// SchemaDiffs pairs them by object: both sides of each difference.
	SchemaDiffs []SchemaDiff `json:"schema_differences,omitempty"`
	// SequencesBehind names sequences whose restored position would hand out
	// a value the source already used.
	SequencesBehind []string `json:"sequences_behind,omitempty"`
}

// Mismatched returns the tables whose content differs.
func (c Comparison) Mismatched() []TableResult {
	var out []TableResult
	for _, t := range c.Tables {
		if !t.Match {
			out = append(out, t)
		}
	}
	return out
}

// OK reports whether the restore holds what the source held: every table
// equal (when the comparison is exact; otherwise every difference one that
// drift explains), the same schema, and no sequence behind.
func (c Comparison) OK() bool {
	if len(c.SchemaMissing) > 0 || len(c.SchemaExtra) > 0 || len(c.SequencesBehind) > 0 {
		return false
	}
	for _, t := range c.Mismatched() {
		if c.Exact || !t.Drift {
			return false
		}
	}
	return true
}

// LimitDrift holds drift to what writes during a backup taken right after
// the fingerprint can explain: at most maxRows rows, or frac of the table,
// whichever is more. A table emptied, or one short of far more rows, is a
// failed restore even when the comparison cannot be exact.
func (c *Comparison) LimitDrift(maxRows int64, frac float64) {
	for i, t := range c.Tables {
		if !t.Drift {
			continue
		}
		diff := t.SourceRows - t.RestoredRows
		if diff < 0 {
			diff = -diff
		}
		limit := max(maxRows, int64(frac*float64(t.SourceRows)))
		if (t.RestoredRows == 0 && t.SourceRows > 0) || diff > limit {
			c.Tables[i].Drift = false
			c.Tables[i].Problem += ": more than writes during the backup explain"
		}
	}
}

// Summary says in one sentence what differs, naming each table.
func (c Comparison) Summary() string {
	var parts []string
	var bad []TableResult
	for _, t := range c.Mismatched() {
		if c.Exact || !t.Drift {
			bad = append(bad, t)
		}
	}
	if len(bad) > 0 {
		names := make([]string, 0, len(bad))
		for _, t := range bad {
			names = append(names, fmt.Sprintf("%s (%s)", QuoteIdent(t.Schema)+"."+QuoteIdent(t.Name), t.Problem))
		}
		parts = append(parts, fmt.Sprintf("%d of %s %s: %s", len(bad), Plural(len(c.Tables), "table", "tables"), map[bool]string{true: "differs", false: "differ"}[len(bad) == 1], strings.Join(names, ", ")))
	}
	if len(c.SchemaMissing)+len(c.SchemaExtra) > 0 {
		parts = append(parts, "the schema differs in "+describeSchemaDiffs(PairSchemaLines(c.SchemaMissing, c.SchemaExtra)))
	}
	if len(c.SequencesBehind) > 0 {
		parts = append(parts, "sequences behind the source: "+strings.Join(c.SequencesBehind, ", "))
	}
	if len(parts) == 0 {
		if c.Exact {
			if len(c.Tables) == 1 {
				return "the 1 table matches"
			}
			return fmt.Sprintf("all %d tables match", len(c.Tables))
		}
		return "schema matches; " + Plural(len(c.Tables), "table", "tables") + " compared as drift (the backup was not taken from the fingerprinted snapshot)"
	}
	return strings.Join(parts, "; ")
}

// Compare compares a source fingerprint with its restore's. exact says
// whether both describe the same moment; see Comparison.Exact.
func Compare(src, dst Fingerprint, exact bool) Comparison {
	c := Comparison{Exact: exact}
	restored := make(map[string]TableSum, len(dst.Tables))
	for _, t := range dst.Tables {
		restored[t.Key()] = t
	}
	seen := make(map[string]bool, len(src.Tables))
	for _, s := range src.Tables {
		seen[s.Key()] = true
		r, ok := restored[s.Key()]
		tr := TableResult{Schema: s.Schema, Name: s.Name, SourceRows: s.Rows, SourceHash: s.Hash, RestoredRows: -1}
		switch {
		case !ok:
			tr.Problem = "missing from the restore"
		default:
			tr.RestoredRows, tr.RestoredHash = r.Rows, r.Hash
			switch {
			case r.Rows != s.Rows:
				tr.Problem = fmt.Sprintf("%s in the source, %d restored", Plural(int(s.Rows), "row", "rows"), r.Rows)
			case r.Hash != s.Hash:
				tr.Problem = "same row count, different content"
			default:
				tr.Match = true
			}
			tr.Drift = !exact && !tr.Match
		}
		c.Tables = append(c.Tables, tr)
	}
	for _, r := range dst.Tables {
		if !seen[r.Key()] {
			c.Tables = append(c.Tables, TableResult{Schema: r.Schema, Name: r.Name, SourceRows: -1,
				RestoredRows: r.Rows, RestoredHash: r.Hash, Problem: "only in the restore", Drift: !exact})
		}
	}
	sort.SliceStable(c.Tables, func(i, j int) bool {
		a, b := c.Tables[i], c.Tables[j]
		if a.Schema != b.Schema {
			return a.Schema < b.Schema
		}
		return a.Name < b.Name
	})
	c.SchemaMissing, c.SchemaExtra = diffLines(src.Schema, dst.Schema)
	c.SchemaDiffs = PairSchemaLines(c.SchemaMissing, c.SchemaExtra)

	seqs := make(map[string]SequenceState, len(dst.Sequences))
	for _, s := range dst.Sequences {
		seqs[s.Key()] = s
	}
	for _, s := range src.Sequences {
		// A sequence only moves forward, and nextval on the source may run
		// between the fingerprint and the dump (sequences are not
		// transactional), so a restore ahead of the source is safe; one behind
		// would hand out ids the source already used.
		if r, ok := seqs[s.Key()]; ok && s.behind(r) {
			c.SequencesBehind = append(c.SequencesBehind, fmt.Sprintf("%s (source at %d, restored at %d)", s.Key(), s.LastValue, r.LastValue))
		}
	}
	return c
}

// diffLines returns the lines of a not in b and of b not in a, counting
// duplicates.
func diffLines(a, b []string) (onlyA, onlyB []string) {
	count := make(map[string]int, len(a))
	for _, l := range a {
		count[l]++
	}
	for _, l := range b {
		if count[l] > 0 {
			count[l]--
			continue
		}
		onlyB = append(onlyB, l)
	}
	for _, l := range a {
		if count[l] > 0 {
			count[l]--
			onlyA = append(onlyA, l)
		}
	}
	return onlyA, onlyB
}
