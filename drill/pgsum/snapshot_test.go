package pgsum_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/restore-drill/restore-drill/drill"
	"github.com/restore-drill/restore-drill/drill/drilltest"
	"github.com/restore-drill/restore-drill/drill/pgsum"
)

// TestFingerprint_Snapshot reads an exported snapshot: rows and tables
// committed after the export are not seen through it.
func TestFingerprint_Snapshot(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)

	db := drilltest.CreateDatabase(t, "pgsum_snap")
	// Tables big enough that every session gets some to hash.
	drilltest.Exec(t, db, `
CREATE TABLE t1 (id serial PRIMARY KEY, v text);
INSERT INTO t1 (v) SELECT 'row ' || i FROM generate_series(1, 10) i;
CREATE TABLE t2 (v int); CREATE TABLE t3 (v int); CREATE TABLE t4 (v int); CREATE TABLE t5 (v int);
INSERT INTO t2 SELECT generate_series(1, 20000);
INSERT INTO t3 SELECT generate_series(1, 20000);
INSERT INTO t4 SELECT generate_series(1, 20000);
INSERT INTO t5 SELECT generate_series(1, 20000);`)
	before := fingerprint(t, db, pgsum.Options{Workers: 4})

	exporter := drilltest.Connect(t, db)
	tx, err := exporter.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	requireNoError(t, err)
	t.Cleanup(func() { _ = tx.Rollback(ctx) })
	var id string
	requireNoError(t, tx.QueryRow(ctx, "SELECT pg_export_snapshot()").Scan(&id))

	drilltest.Exec(t, db, `
INSERT INTO t1 (v) SELECT 'late ' || i FROM generate_series(1, 5) i;
DELETE FROM t2 WHERE v <= 3;
UPDATE t3 SET v = -v WHERE v = 1;
INSERT INTO t4 VALUES (0);
DELETE FROM t5 WHERE v = 20000;
CREATE TABLE t6 (v int);`)

	snap := fingerprint(t, db, pgsum.Options{Workers: 4, Snapshot: id})
	now := fingerprint(t, db, pgsum.Options{Workers: 4})

	requireEqual(t, 5, len(snap.Tables), "tables in the snapshot")
	requireEqual(t, int64(10), tableByKey(t, snap, `"public"."t1"`).Rows, "t1 rows in the snapshot")
	requireEqual(t, int64(20000), tableByKey(t, snap, `"public"."t2"`).Rows, "t2 rows in the snapshot")
	requireEqualSlices(t, before.Tables, snap.Tables, "snapshot tables against those before the writes")
	requireEqualSlices(t, before.Schema, snap.Schema, "snapshot schema against the one before the writes")

	requireEqual(t, 6, len(now.Tables), "tables now")
	requireEqual(t, int64(15), tableByKey(t, now, `"public"."t1"`).Rows, "t1 rows now")
	requireEqual(t, int64(19997), tableByKey(t, now, `"public"."t2"`).Rows, "t2 rows now")

	// Sequences are not transactional: the snapshot sees the position of
	// now, not of the export. Compare accepts a restore that is ahead.
	requireEqual(t, int64(10), before.Sequences[0].LastValue, "sequence before the writes")
	requireEqual(t, int64(15), snap.Sequences[0].LastValue, "sequence read through the snapshot")
	if cmp := drill.Compare(before, snap, true); !cmp.OK() {
		t.Fatalf("snapshot fingerprint differs from the one before the writes: %s", cmp.Summary())
	}
}

// TestFingerprint_OneMoment fingerprints while a writer commits one row to
// every table per transaction: without a snapshot given, the sessions still
// share one (the first exports it), so every table has the same count.
func TestFingerprint_OneMoment(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)

	db := drilltest.CreateDatabase(t, "pgsum_moment")
	tables := []string{"m1", "m2", "m3", "m4", "m5", "m6"}
	for _, name := range tables {
		drilltest.Exec(t, db, `CREATE TABLE `+name+` (v int); INSERT INTO `+name+` SELECT generate_series(1, 20000)`)
	}
	writer := drilltest.Connect(t, db)
	var sql strings.Builder
	for _, name := range tables {
		sql.WriteString(`INSERT INTO ` + name + ` VALUES (0);`)
	}
	writeCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var commits int
	wg.Go(func() {
		for writeCtx.Err() == nil {
			// Several statements in one simple-protocol call run as one
			// transaction.
			if _, err := writer.Exec(writeCtx, sql.String()); err == nil {
				commits++
			}
		}
	})

	fps := make([]drill.Fingerprint, 3)
	for i := range fps {
		fps[i] = fingerprint(t, db, pgsum.Options{Workers: 3})
	}
	stop()
	wg.Wait()

	if commits < 3 {
		t.Fatalf("the writer committed only %d times: the test proves nothing", commits)
	}
	for _, fp := range fps {
		requireEqual(t, len(tables), len(fp.Tables), "tables")
		for _, ts := range fp.Tables {
			requireEqual(t, fp.Tables[0].Rows, ts.Rows, "rows of "+ts.Key()+" against "+fp.Tables[0].Key())
		}
	}
	if fps[0].Tables[0].Rows == fps[len(fps)-1].Tables[0].Rows {
		t.Fatalf("no commit between the first and last fingerprint: the test proves nothing")
	}
}

func TestFingerprint_BadSnapshot(t *testing.T) {
	t.Parallel()
	db := drilltest.CreateDatabase(t, "pgsum_badsnap")
	cfg := drilltest.ConnConfig(t, db)

	for _, tt := range []struct {
		name, id string
	}{
		{"Garbage", "not-a-snapshot"},
		{"Injection", "00000003-00003450-1'; DROP TABLE x; --"},
		{"Lowercase", "0000000a-0000006d-1"},
		{"TwoParts", "00000003-00003450"},
		{"EmptyPart", "00000003--1"},
		{"Spaces", " 00000003-00003450-1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := pgsum.Fingerprint(testContext(t), cfg, pgsum.Options{Snapshot: tt.id})
			if err == nil || !strings.Contains(err.Error(), "is not of the form pg_export_snapshot() returns") {
				t.Fatalf("want a snapshot id error, got %v", err)
			}
		})
	}

	t.Run("Unknown", func(t *testing.T) {
		t.Parallel()
		_, err := pgsum.Fingerprint(testContext(t), cfg, pgsum.Options{Snapshot: "00000003-0FFFFFFF-1"})
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "22023" {
			t.Fatalf("want invalid_parameter_value from Postgres, got %v", err)
		}
		if !strings.Contains(err.Error(), "importing snapshot 00000003-0FFFFFFF-1") {
			t.Fatalf("error does not say what failed: %v", err)
		}
	})
}
