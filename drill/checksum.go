package drill

import (
	"context"
	"fmt"
	"slices"
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
	// Schema holds every schema object that counts (columns and their
	// types, constraints, indexes, views, functions, policies, enum labels,
	// domains, ...), sorted. Two databases with the same objects, their
	// definitions compared normalised, have the same shape.
	Schema []SchemaObject `json:"schema"`
}

// Kinds of TableSum other than a table.
const (
	// KindMatView is a populated materialized view.
	KindMatView = "materialized view"
	// KindPartitionTree is a partitioned table hashed at its root, all its
	// partitions together: its rows may legitimately move between
	// partitions in a restore (hash partitions on an enum column).
	KindPartitionTree = "partition tree"
)

// TableSum is one table's row count and order-independent content hash.
type TableSum struct {
	Schema string `json:"schema"`
	Name   string `json:"name"`
	// Kind is "" for a table, else KindMatView or KindPartitionTree.
	Kind string `json:"kind,omitempty"`
	Rows int64  `json:"rows"`
	// Hash is the sum of a 64-bit hash of every row's text form, as a decimal
	// string (the sum is kept in numeric, so it never overflows).
	Hash string `json:"hash"`
}

// Key is the table's qualified, quoted name, as Postgres would print it.
func (t TableSum) Key() string { return QuoteIdent(t.Schema) + "." + QuoteIdent(t.Name) }

// Key names the table result's table: its quoted schema and name.
func (t TableResult) Key() string { return QuoteIdent(t.Schema) + "." + QuoteIdent(t.Name) }

// SequenceState is a sequence's position.
type SequenceState struct {
	Schema    string `json:"schema"`
	Name      string `json:"name"`
	LastValue int64  `json:"last_value"`
	IsCalled  bool   `json:"is_called"`
	// Increment is the step; a negative one counts down.
	Increment int64 `json:"increment,omitempty"`
	// Columns names the integer columns that take their values from the
	// sequence (it is owned by them or their default calls it) and that an
	// index lets read their extreme value cheaply.
	Columns []string `json:"columns,omitempty"`
	// Used is the furthest value those columns hold in the sequence's
	// direction (the highest, or the lowest for a sequence counting down);
	// nil when they hold none.
	Used *int64 `json:"used,omitempty"`
}

// covers reports whether s would hand out only values beyond v, the
// furthest its columns hold.
func (s SequenceState) covers(v int64) bool {
	if s.Increment < 0 {
		return s.next() < v
	}
	return s.next() > v
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
	Schema string `json:"schema"`
	Name   string `json:"name"`
	// Kind is the TableSum's kind: "" for a table.
	Kind         string `json:"kind,omitempty"`
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
	// SchemaDiffs lists every schema object that differs, with both sides.
	SchemaDiffs []SchemaDiff `json:"schema_diffs,omitempty"`
	// SchemaMissing and SchemaExtra are the source and restore sides of
	// SchemaDiffs as lines: what the source has that the restore lacks or
	// holds otherwise, and the other way round.
	SchemaMissing []string `json:"schema_missing,omitempty"`
	SchemaExtra   []string `json:"schema_extra,omitempty"`
	// SequencesBehind names sequences whose restored position would hand out
	// a value already used: one its own columns hold in the restore, or, for
	// a sequence no column uses, one the source handed out.
	SequencesBehind []string `json:"sequences_behind,omitempty"`
	// Notes are differences that are not failures, each saying why: a stale
	// materialized view, an invalid index left out of the dump, a partition
	// tree compared at its root.
	Notes []string `json:"notes,omitempty"`
}

// failing reports whether table result t fails the comparison: a
// difference that is not drift, and not a materialized view (pg_restore
// recomputes those: a difference is a note).
func (c Comparison) failing(t TableResult) bool {
	return !t.Match && t.Kind != KindMatView && (c.Exact || !t.Drift)
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
	if len(c.SchemaDiffs) > 0 || len(c.SequencesBehind) > 0 {
		return false
	}
	return !slices.ContainsFunc(c.Tables, c.failing)
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
	for _, t := range c.Tables {
		if c.failing(t) {
			bad = append(bad, t)
		}
	}
	if len(bad) > 0 {
		names := make([]string, 0, len(bad))
		for _, t := range bad {
			names = append(names, fmt.Sprintf("%s (%s)", t.Key(), t.Problem))
		}
		parts = append(parts, fmt.Sprintf("%d of %s %s: %s", len(bad), Plural(len(c.Tables), "table", "tables"), map[bool]string{true: "differs", false: "differ"}[len(bad) == 1], strings.Join(names, ", ")))
	}
	if n := len(c.SchemaDiffs); n > 0 {
		named := make([]string, 0, min(n, maxNamed))
		for _, d := range c.SchemaDiffs[:min(n, maxNamed)] {
			named = append(named, d.String())
		}
		if n > maxNamed {
			named = append(named, fmt.Sprintf("and %d more", n-maxNamed))
		}
		parts = append(parts, fmt.Sprintf("the schema differs in %s: %s", Plural(n, "object", "objects"), strings.Join(named, ", ")))
	}
	if len(c.SequencesBehind) > 0 {
		parts = append(parts, "sequences behind the source: "+strings.Join(c.SequencesBehind, ", "))
	}
	if len(parts) == 0 {
		var stale []string
		for _, t := range c.Mismatched() {
			if t.Kind == KindMatView {
				stale = append(stale, t.Key())
			}
		}
		if c.Exact && len(stale) > 0 {
			return fmt.Sprintf("%d of %d tables match; the other %s, stale in the source and recomputed by the restore: %s",
				len(c.Tables)-len(stale), len(c.Tables), Plural(len(stale), "is a materialized view", "are materialized views"), strings.Join(stale, ", "))
		}
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

// maxNamed is how many schema differences Summary names.
const maxNamed = 10

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
		tr := TableResult{Schema: s.Schema, Name: s.Name, Kind: s.Kind, SourceRows: s.Rows, SourceHash: s.Hash, RestoredRows: -1}
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
			c.Tables = append(c.Tables, TableResult{Schema: r.Schema, Name: r.Name, Kind: r.Kind, SourceRows: -1,
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
	for _, t := range c.Tables {
		key := QuoteIdent(t.Schema) + "." + QuoteIdent(t.Name)
		switch {
		case t.Kind == KindMatView && !t.Match && !exact:
			c.Notes = append(c.Notes, fmt.Sprintf("materialized view %s differs from the source (%s): the comparison is not exact, and pg_restore recomputes materialized views, so writes or a stale copy in the source explain it", key, t.Problem))
		case t.Kind == KindMatView && !t.Match:
			c.Notes = append(c.Notes, fmt.Sprintf("materialized view %s differs from the source (%s): pg_restore recomputes materialized views, so the source's copy is stale (its tables changed after its last REFRESH) and the restore serves other contents", key, t.Problem))
		case t.Kind == KindPartitionTree:
			c.Notes = append(c.Notes, fmt.Sprintf("%s is compared as a whole, not partition by partition: it is hash-partitioned on an enum column, whose hashes change in a restore, so rows may move between its partitions", key))
		}
	}

	sc := compareSchema(src.Schema, dst.Schema)
	c.SchemaDiffs = sc.diffs
	c.Notes = append(c.Notes, sc.notes...)
	for _, d := range c.SchemaDiffs {
		if d.Source != "" {
			c.SchemaMissing = append(c.SchemaMissing, d.Source)
		}
		if d.Restored != "" {
			c.SchemaExtra = append(c.SchemaExtra, d.Restored)
		}
	}
	c.SequencesBehind = sequencesBehind(src.Sequences, dst.Sequences, exact)
	return c
}

// sequencesBehind names the restored sequences that would hand out a value
// already used. Sequences are not transactional: pg_dump reads each when it
// reaches it, after the snapshot, and a fingerprint reads it at yet another
// moment, so under writes a restored sequence and the source's differ
// legitimately. What must hold is that a sequence is beyond every value its
// own columns hold in the restore. A sequence no (indexed) column uses can
// only be compared with the source, and only when exact: a restore behind
// the source would hand out values the source already did.
func sequencesBehind(src, dst []SequenceState, exact bool) []string {
	source := make(map[string]SequenceState, len(src))
	for _, s := range src {
		source[s.Key()] = s
	}
	var out []string
	for _, r := range dst {
		if len(r.Columns) > 0 {
			if r.Used != nil && !r.covers(*r.Used) {
				out = append(out, fmt.Sprintf("%s (restored at %d, behind the value %d that %s already holds)", r.Key(), r.LastValue, *r.Used, strings.Join(r.Columns, " or ")))
			}
			continue
		}
		if s, ok := source[r.Key()]; ok && exact && s.behind(r) {
			out = append(out, fmt.Sprintf("%s (source at %d, restored at %d)", r.Key(), s.LastValue, r.LastValue))
		}
	}
	return out
}
