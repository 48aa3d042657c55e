package pgsum

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/restore-drill/restore-drill/drill"
)

// Freshness returns, for the tables of the database conn is connected to,
// the newest value of each timestamp column (at most two per table, and
// only those with an index, so that each is one quick index probe),
// newest first, at most limit of them. It tells people how recent the data
// of a restored database is before they let it serve.
func Freshness(ctx context.Context, conn *pgx.Conn, limit int) ([]drill.Freshness, error) {
	rows, err := conn.Query(ctx, `SELECT n.nspname::text, c.relname::text, a.attname::text
FROM pg_catalog.pg_attribute a
JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND a.attnum > 0 AND NOT a.attisdropped
	AND a.atttypid IN ('timestamptz'::regtype, 'timestamp'::regtype)
	AND `+userNamespace+`
	AND EXISTS (SELECT 1 FROM pg_catalog.pg_index i WHERE i.indrelid = c.oid AND i.indkey[0] = a.attnum)
ORDER BY 1, 2, a.attnum`)
	if err != nil {
		return nil, fmt.Errorf("listing timestamp columns: %w", err)
	}
	type col struct{ schema, table, column string }
	cols, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (col, error) {
		var c col
		return c, r.Scan(&c.schema, &c.table, &c.column)
	})
	if err != nil {
		return nil, fmt.Errorf("listing timestamp columns: %w", err)
	}
	perTable := map[string]int{}
	var out []drill.Freshness
	for _, c := range cols {
		key := c.schema + "." + c.table
		if perTable[key] == 2 {
			continue
		}
		perTable[key]++
		var newest *time.Time
		q := fmt.Sprintf(`SELECT max(%s)::timestamptz FROM %s`, pgx.Identifier{c.column}.Sanitize(), pgx.Identifier{c.schema, c.table}.Sanitize())
		if err := conn.QueryRow(ctx, q).Scan(&newest); err != nil {
			return nil, fmt.Errorf("reading the newest %s of %s: %w", c.column, key, err)
		}
		if newest != nil {
			out = append(out, drill.Freshness{Schema: c.schema, Table: c.table, Column: c.column, Newest: newest.UTC()})
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Newest.After(out[j].Newest) })
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}
