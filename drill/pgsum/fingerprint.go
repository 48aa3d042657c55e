// Package pgsum computes drill.Fingerprints of PostgreSQL databases: per
// table a row count and an order-independent hash of the rows' text forms,
// the position of every sequence, and every schema object. All of it
// is computed inside Postgres, in read-only repeatable-read transactions that
// can share one exported snapshot, so no row crosses the network and a
// fingerprint can describe exactly what a pg_dump --snapshot of the same
// snapshot holds.
package pgsum

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/restore-drill/restore-drill/drill"
)

// defaultWorkers is the number of hashing sessions when Options.Workers is
// not positive.
const defaultWorkers = 4

// Options for Fingerprint.
type Options struct {
	// Workers is how many connections hash tables in parallel; <= 0 means 4.
	// No more are opened than there are tables.
	Workers int
	// Snapshot is an optional snapshot id from pg_export_snapshot(). When
	// set, every connection reads exactly that snapshot, which the exporting
	// transaction must keep open until Fingerprint returns. When empty, the
	// first connection exports its own snapshot for the others, so the
	// fingerprint is still of one moment.
	Snapshot string
}

// Fingerprint computes the fingerprint of the database cfg points at. cfg is
// copied, never changed; the connections report application_name
// restore-drill and apply SessionSettings.
//
// Tables are every ordinary table and leaf partition (not partitioned
// parents, whose rows their partitions hold) outside the system schemas and
// not part of an extension, unlogged ones included, and every populated
// materialized view. A partition tree hash-partitioned on an enum column is
// hashed whole at its root (see listTables). When the database holds large
// objects they appear as a pseudo table pg_catalog.pg_largeobject.
//
// Sequence positions are read as they are now, not as of the snapshot:
// sequences are not transactional. With each comes the furthest value its
// indexed columns hold in the snapshot. Foreign tables are described in
// Schema but not hashed.
//
// The first failure cancels the remaining work; its error names the table.
// An invalid Options.Snapshot fails before connecting.
func Fingerprint(ctx context.Context, cfg *pgx.ConnConfig, opts Options) (drill.Fingerprint, error) {
	if err := validateSnapshot(opts.Snapshot); err != nil {
		return drill.Fingerprint{}, fmt.Errorf("fingerprinting database %s: %w", cfg.Database, err)
	}
	fp, err := fingerprint(ctx, cfg, opts)
	if err != nil {
		return drill.Fingerprint{}, fmt.Errorf("fingerprinting database %s: %w", cfg.Database, err)
	}
	return fp, nil
}

func fingerprint(ctx context.Context, cfg *pgx.ConnConfig, opts Options) (drill.Fingerprint, error) {
	lead, err := openSession(ctx, cfg, opts.Snapshot)
	if err != nil {
		return drill.Fingerprint{}, err
	}
	defer lead.close(ctx)

	// Sequences first: they are read as they are now, and a dump started
	// with the fingerprint reads them later, so a sequence no column uses
	// is restored at or beyond what is read here.
	seqs, err := sequences(ctx, lead.tx)
	if err != nil {
		return drill.Fingerprint{}, err
	}
	tables, err := listTables(ctx, lead.tx)
	if err != nil {
		return drill.Fingerprint{}, err
	}
	workers := opts.Workers
	if workers <= 0 {
		workers = defaultWorkers
	}
	workers = max(min(workers, len(tables)), 1)
	snapshot := opts.Snapshot
	if snapshot == "" && workers > 1 {
		if snapshot, err = lead.exportSnapshot(ctx); err != nil {
			return drill.Fingerprint{}, err
		}
	}
	sums, err := hashTables(ctx, lead, cfg, snapshot, tables, workers)
	if err != nil {
		return drill.Fingerprint{}, err
	}
	lo, ok, err := largeObjects(ctx, lead.tx)
	if err != nil {
		return drill.Fingerprint{}, err
	}
	if ok {
		sums = append(sums, lo)
		slices.SortFunc(sums, func(a, b drill.TableSum) int {
			if c := strings.Compare(a.Schema, b.Schema); c != 0 {
				return c
			}
			return strings.Compare(a.Name, b.Name)
		})
	}
	schema, err := schemaObjects(ctx, lead.tx)
	if err != nil {
		return drill.Fingerprint{}, err
	}
	return drill.Fingerprint{Tables: sums, Sequences: seqs, Schema: schema}, nil
}
