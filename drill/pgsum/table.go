package pgsum

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/restore-drill/restore-drill/drill"
)

// table is a relation that holds rows, with its live columns.
type table struct {
	schema, name string
	// kind is "" for a table, else drill.KindMatView or
	// drill.KindPartitionTree.
	kind    string
	columns []string
	// pages is the planner's size estimate (relpages), read from the
	// catalog without locking the table.
	pages int64
}

func (t table) String() string { return pgx.Identifier{t.schema, t.name}.Sanitize() }

// listTables returns what to hash, sorted by schema and name: every
// ordinary table (relkind 'r', so leaf partitions and not their partitioned
// parents, whose scan would count the rows twice) and every populated
// materialized view in the user schemas, extension members left out.
//
// The partitions of a tree with hash partitions on an enum column are
// replaced by the tree's root: enum hashes follow the enum's OIDs, which a
// restore changes, so pg_dump (15.2 and later) loads such a tree through its
// root and rows may land in other partitions. The test for such a tree is
// pg_dump's own: an enum_ops hash operator class in its partition key.
func listTables(ctx context.Context, tx pgx.Tx) ([]table, error) {
	rows, err := tx.Query(ctx, `WITH enum_hash AS (
	SELECT pt.partrelid FROM pg_catalog.pg_partitioned_table pt
	WHERE (SELECT oc.oid FROM pg_catalog.pg_opclass oc JOIN pg_catalog.pg_am am ON am.oid = oc.opcmethod
		WHERE oc.opcname = 'enum_ops' AND oc.opcnamespace = 'pg_catalog'::pg_catalog.regnamespace AND am.amname = 'hash')
		OPERATOR(pg_catalog.=) ANY (pt.partclass)
), unit AS (
	SELECT CASE WHEN c.relispartition AND EXISTS (SELECT 1 FROM pg_catalog.pg_partition_ancestors(c.oid) a
			WHERE a.relid IN (SELECT partrelid FROM enum_hash))
		THEN pg_catalog.pg_partition_root(c.oid) ELSE c.oid END AS oid,
		greatest(c.relpages, 0)::bigint AS pages
	FROM pg_catalog.pg_class c
	JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
	WHERE (c.relkind = 'r' OR (c.relkind = 'm' AND c.relispopulated)) AND c.relpersistence <> 't'
		AND `+userNamespace+`
		AND `+notExtensionMember("pg_class", "c.oid")+`
)
SELECT n.nspname::text, c.relname::text,
	CASE c.relkind WHEN 'm' THEN '`+drill.KindMatView+`' WHEN 'p' THEN '`+drill.KindPartitionTree+`' ELSE '' END,
	ARRAY(SELECT a.attname::text FROM pg_catalog.pg_attribute a
		WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped),
	sum(u.pages)::bigint
FROM unit u
JOIN pg_catalog.pg_class c ON c.oid = u.oid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
GROUP BY n.nspname, c.relname, c.relkind, c.oid`)
	if err != nil {
		return nil, fmt.Errorf("listing tables: %w", err)
	}
	tables, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (table, error) {
		var t table
		err := row.Scan(&t.schema, &t.name, &t.kind, &t.columns, &t.pages)
		return t, err
	})
	if err != nil {
		return nil, fmt.Errorf("listing tables: %w", err)
	}
	slices.SortFunc(tables, func(a, b table) int {
		if c := strings.Compare(a.schema, b.schema); c != 0 {
			return c
		}
		return strings.Compare(a.name, b.name)
	})
	return tables, nil
}

// hashQuery returns the query counting t's rows and summing a 64-bit hash of
// each row's text form.
//
// The row is rebuilt with its columns in name order rather than read as the
// whole-row t::text, whose column order is the table's physical one:
// pg_dump does not keep that order for inheritance children (a column added
// to the parent after the child was created ends up elsewhere in the
// restored child), and the same rows would then hash differently. Column
// names are unique, so name order is a stable order. With no columns the
// row is "()", so such a table still counts its rows. ONLY keeps an
// inheritance parent from counting its children's rows; a partition tree
// is read whole, through its root.
func hashQuery(t table) string {
	cols := slices.Clone(t.columns)
	slices.Sort(cols)
	refs := make([]string, len(cols))
	for i, c := range cols {
		refs[i] = "t." + pgx.Identifier{c}.Sanitize()
	}
	// The session's search_path is empty, so count, sum and
	// hashtextextended can only be pg_catalog's.
	only := "ONLY "
	if t.kind != "" {
		only = ""
	}
	return "SELECT count(*), coalesce(sum(hashtextextended(ROW(" + strings.Join(refs, ", ") +
		")::text, 0)), 0)::text FROM " + only + t.String() + " AS t"
}

// hashTable computes one table's sum inside tx.
func hashTable(ctx context.Context, tx pgx.Tx, t table) (drill.TableSum, error) {
	sum := drill.TableSum{Schema: t.schema, Name: t.name, Kind: t.kind}
	if err := tx.QueryRow(ctx, hashQuery(t)).Scan(&sum.Rows, &sum.Hash); err != nil {
		return drill.TableSum{}, fmt.Errorf("hashing table %s: %w", t, err)
	}
	return sum, nil
}

// hashTables hashes tables over lead and workers-1 further sessions, all
// reading snapshot, and returns the sums in the order of tables. The first
// error cancels the remaining work and is the one returned.
func hashTables(ctx context.Context, lead *session, cfg *pgx.ConnConfig, snapshot string, tables []table, workers int) ([]drill.TableSum, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	// Largest first, so that no session starts a big table last while the
	// others sit idle.
	order := make([]int, len(tables))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(tables[b].pages, tables[a].pages) })
	jobs := make(chan int, len(tables))
	for _, i := range order {
		jobs <- i
	}
	close(jobs)

	sums := make([]drill.TableSum, len(tables))
	var (
		once     sync.Once
		firstErr error
		wg       sync.WaitGroup
	)
	fail := func(err error) {
		once.Do(func() { firstErr = err; cancel() })
	}
	work := func(tx pgx.Tx) {
		for i := range jobs {
			if ctx.Err() != nil {
				return
			}
			sum, err := hashTable(ctx, tx, tables[i])
			if err != nil {
				fail(err)
				return
			}
			sums[i] = sum
		}
	}

	for range workers - 1 {
		wg.Go(func() {
			s, err := openSession(ctx, cfg, snapshot)
			var connectErr *pgconn.ConnectError
			if errors.As(err, &connectErr) {
				// Out of connections (a small plan's limit, say): the
				// sessions that did open, the lead at least, do the work.
				return
			}
			if err != nil {
				fail(fmt.Errorf("opening a hashing session: %w", err))
				return
			}
			defer s.close(ctx)
			work(s.tx)
		})
	}
	wg.Go(func() { work(lead.tx) })
	wg.Wait()

	if firstErr != nil {
		return nil, firstErr
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("hashing tables: %w", err)
	}
	return sums, nil
}
