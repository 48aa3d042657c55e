package pgsum_test

import (
	"testing"
	"time"

	"github.com/restore-drill/restore-drill/drill/drilltest"
	"github.com/restore-drill/restore-drill/drill/pgsum"
)

// BenchmarkFingerprint fingerprints a database holding one 200k-row table
// and reports the time against a bare hash scan of the same table
// (bare-ns/op, and x-bare: fingerprint time over bare scan time).
func BenchmarkFingerprint(b *testing.B) {
	const rows = 200_000
	db := drilltest.CreateDatabase(b, "pgsum_bench")
	drilltest.Exec(b, db, `CREATE TABLE public.bench (id int PRIMARY KEY, name text, doc jsonb, blob bytea);
INSERT INTO public.bench
SELECT i, 'name ' || i, jsonb_build_object('i', i, 'tags', jsonb_build_array('a', i % 7), 'at', now()),
	sha256(int4send(i))
FROM generate_series(1, 200000) i`)
	drilltest.Exec(b, db, `VACUUM (ANALYZE) public.bench`)
	ctx := testContext(b)
	conn := drilltest.Connect(b, db)
	cfg := drilltest.ConnConfig(b, db)

	// The bare scan runs between fingerprints, with the timer stopped, so
	// that both see the same machine load.
	const bareScan = `SELECT sum(hashtextextended(t::text, 0))::text FROM public.bench t`
	var sum string
	var bare time.Duration
	for b.Loop() {
		b.StopTimer()
		start := time.Now()
		if err := conn.QueryRow(ctx, bareScan).Scan(&sum); err != nil {
			b.Fatalf("bare scan: %v", err)
		}
		bare += time.Since(start)
		b.StartTimer()

		fp, err := pgsum.Fingerprint(ctx, cfg, pgsum.Options{})
		if err != nil {
			b.Fatal(err)
		}
		if len(fp.Tables) != 1 || fp.Tables[0].Rows != rows {
			b.Fatalf("unexpected fingerprint tables: %+v", fp.Tables)
		}
	}
	b.ReportMetric(float64(bare.Nanoseconds())/float64(b.N), "bare-ns/op")
	b.ReportMetric(float64(b.Elapsed())/float64(bare), "x-bare")
}

// BenchmarkFingerprintEmpty measures the fixed cost of a fingerprint:
// connecting, the transaction and settings, and the catalog queries.
func BenchmarkFingerprintEmpty(b *testing.B) {
	db := drilltest.CreateDatabase(b, "pgsum_bench_empty")
	ctx := testContext(b)
	cfg := drilltest.ConnConfig(b, db)
	for b.Loop() {
		if _, err := pgsum.Fingerprint(ctx, cfg, pgsum.Options{}); err != nil {
			b.Fatal(err)
		}
	}
}
