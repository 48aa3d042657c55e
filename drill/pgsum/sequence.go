package pgsum

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/restore-drill/restore-drill/drill"
)

// sequences reads the position of every sequence in the user schemas,
// extension members left out, in one round trip.
//
// A sequence is not transactional: its position is the current one, not the
// snapshot's, and may be ahead of the rows the snapshot sees. drill.Compare
// allows a restore to be ahead for that reason.
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
	}
	if err := tx.SendBatch(ctx, batch).Close(); err != nil {
		return nil, fmt.Errorf("reading sequences: %w", err)
	}
	return seqs, nil
}
