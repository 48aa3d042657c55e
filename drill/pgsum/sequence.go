package pgsum

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/restore-drill/restore-drill/drill"
)

// sequences reads the position of every sequence in the user schemas,
// extension members left out, and how far the columns that use each hold
// values (see drill.SequenceState), in three round trips.
//
// A sequence is not transactional: its position is the current one, not the
// snapshot's, and may be ahead of the rows the snapshot sees. drill.Compare
// therefore holds a restored sequence to the values its own columns hold.
// Only columns an index leads are read (one index probe each), so that no
// table is scanned for it.
func sequences(ctx context.Context, tx pgx.Tx) ([]drill.SequenceState, error) {
	rows, err := tx.Query(ctx, `SELECT n.nspname::text, c.relname::text, s.seqincrement
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_sequence s ON s.seqrelid = c.oid
WHERE c.relkind = 'S' AND c.relpersistence <> 't'
	AND `+userNamespace+`
	AND `+notExtensionMember("pg_class", "c.oid")+`
ORDER BY n.nspname::text COLLATE "C", c.relname::text COLLATE "C"`)
	if err != nil {
		return nil, fmt.Errorf("listing sequences: %w", err)
	}
	seqs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (drill.SequenceState, error) {
		var s drill.SequenceState
		err := row.Scan(&s.Schema, &s.Name, &s.Increment)
		return s, err
	})
	if err != nil {
		return nil, fmt.Errorf("listing sequences: %w", err)
	}
	if len(seqs) == 0 {
		return nil, nil
	}
	cols, err := sequenceColumns(ctx, tx)
	if err != nil {
		return nil, err
	}

	batch := &pgx.Batch{}
	for i := range seqs {
		s := &seqs[i]
		batch.Queue("SELECT last_value, is_called FROM " + pgx.Identifier{s.Schema, s.Name}.Sanitize()).
			QueryRow(func(row pgx.Row) error {
				if err := row.Scan(&s.LastValue, &s.IsCalled); err != nil {
					return fmt.Errorf("reading sequence %s: %w", s.Key(), err)
				}
				return nil
			})
		agg := "max"
		if s.Increment < 0 {
			agg = "min"
		}
		for _, c := range cols[s.Key()] {
			s.Columns = append(s.Columns, c.String())
			batch.Queue("SELECT " + agg + "(" + pgx.Identifier{c.column}.Sanitize() + ")::bigint FROM " + pgx.Identifier{c.schema, c.table}.Sanitize()).
				QueryRow(func(row pgx.Row) error {
					var v *int64
					if err := row.Scan(&v); err != nil {
						return fmt.Errorf("reading the values of %s that sequence %s gave: %w", c, s.Key(), err)
					}
					if v != nil && (s.Used == nil || (s.Increment >= 0) == (*v > *s.Used)) {
						s.Used = v
					}
					return nil
				})
		}
	}
	if err := tx.SendBatch(ctx, batch).Close(); err != nil {
		return nil, fmt.Errorf("reading sequences: %w", err)
	}
	return seqs, nil
}

// seqColumn is an integer column that takes its values from a sequence.
type seqColumn struct{ schema, table, column string }

func (c seqColumn) String() string { return pgx.Identifier{c.schema, c.table, c.column}.Sanitize() }

// sequenceColumns returns, by the sequence's key, the integer columns of
// tables that a sequence is owned by (serial, identity, OWNED BY) or that
// call it in their default, when an index (valid, not partial) leads with
// the column, so that its extreme value is one index probe.
func sequenceColumns(ctx context.Context, tx pgx.Tx) (map[string][]seqColumn, error) {
	rows, err := tx.Query(ctx, `WITH uses AS (
	SELECT d.objid AS seq, d.refobjid AS rel, d.refobjsubid AS att
	FROM pg_catalog.pg_depend d
	WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass
		AND d.deptype IN ('a', 'i') AND d.refobjsubid > 0
	UNION
	SELECT d.refobjid, ad.adrelid, ad.adnum
	FROM pg_catalog.pg_depend d
	JOIN pg_catalog.pg_attrdef ad ON ad.oid = d.objid
	WHERE d.classid = 'pg_catalog.pg_attrdef'::pg_catalog.regclass AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass
		AND d.deptype = 'n'
)
SELECT sn.nspname::text, s.relname::text, n.nspname::text, c.relname::text, a.attname::text
FROM uses u
JOIN pg_catalog.pg_class s ON s.oid = u.seq AND s.relkind = 'S'
JOIN pg_catalog.pg_namespace sn ON sn.oid = s.relnamespace
JOIN pg_catalog.pg_class c ON c.oid = u.rel AND c.relkind IN ('r', 'p')
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_attribute a ON a.attrelid = u.rel AND a.attnum = u.att AND NOT a.attisdropped
WHERE a.atttypid IN ('pg_catalog.int2'::pg_catalog.regtype, 'pg_catalog.int4'::pg_catalog.regtype, 'pg_catalog.int8'::pg_catalog.regtype)
	AND EXISTS (SELECT 1 FROM pg_catalog.pg_index i
		WHERE i.indrelid = u.rel AND i.indkey[0] = u.att AND i.indisvalid AND i.indpred IS NULL)
ORDER BY 3, 4, 5`)
	if err != nil {
		return nil, fmt.Errorf("listing the columns of sequences: %w", err)
	}
	out := map[string][]seqColumn{}
	var seqSchema, seqName string
	var c seqColumn
	_, err = pgx.ForEachRow(rows, []any{&seqSchema, &seqName, &c.schema, &c.table, &c.column}, func() error {
		key := drill.SequenceState{Schema: seqSchema, Name: seqName}.Key()
		out[key] = append(out[key], c)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing the columns of sequences: %w", err)
	}
	return out, nil
}
