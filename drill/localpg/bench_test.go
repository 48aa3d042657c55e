package localpg_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/restore-drill/restore-drill/drill"
	"github.com/restore-drill/restore-drill/drill/drilltest"
	"github.com/restore-drill/restore-drill/drill/localpg"
	"github.com/restore-drill/restore-drill/drill/pgsum"
)

// BenchmarkDrill measures a whole verify drill on a database of pgbench
// tables at BENCH_SCALE (default 50, about 750 MB) plus a wide table with
// jsonb and bytea, against its parts done bare: pg_dump, pg_restore -j, and
// one hash scan of each side. Run it once:
//
//	go test -run '^$' -bench Drill -benchtime 1x -timeout 60m ./drill/localpg/
//
// Targets: overhead = total / (dump + restore + scan source + scan restore)
// <= 1.15, and fingerprint / bare scan <= 1.3 on each side.
func BenchmarkDrill(b *testing.B) {
	scale := 50
	if s, err := strconv.Atoi(os.Getenv("BENCH_SCALE")); err == nil && s > 0 {
		scale = s
	}
	ctx := context.Background()
	app := drilltest.CreateDatabase(b, "bench")
	build := time.Now()
	if out, err := exec.Command("pgbench", "-i", "-q", "-s", strconv.Itoa(scale), app).CombinedOutput(); err != nil {
		b.Fatalf("pgbench -i: %v\n%s", err, out)
	}
	drilltest.Exec(b, app, fmt.Sprintf(`
		CREATE TABLE wide (id bigint PRIMARY KEY, doc jsonb, blob bytea, note text, at timestamptz);
		INSERT INTO wide SELECT g, jsonb_build_object('g', g, 'tags', jsonb_build_array('a', g %% 7, md5(g::text))),
			decode(md5(g::text) || md5((g+1)::text), 'hex'), repeat('x', g %% 200), now()
		FROM generate_series(1, %d) g;`, 20000*scale))
	drilltest.Exec(b, app, `VACUUM ANALYZE`)
	var size int64
	conn := drilltest.Connect(b, app)
	if err := conn.QueryRow(ctx, `SELECT pg_database_size(current_database())`).Scan(&size); err != nil {
		b.Fatal(err)
	}
	b.Logf("built %s (%d MB) in %s", app, size>>20, time.Since(build).Round(time.Second))
	tables := []string{"pgbench_accounts", "pgbench_branches", "pgbench_tellers", "pgbench_history", "wide"}

	for b.Loop() {
		dir := b.TempDir()
		// The parts, bare.
		dumpFile := filepath.Join(dir, "bare.dump")
		dump := timeIt(b, "pg_dump", "--format=custom", "--compress=1", "--file="+dumpFile, "--dbname="+app)
		bareDst := drilltest.CreateDatabase(b, "benchdst")
		restore := timeIt(b, "pg_restore", "--jobs=2", "--no-owner", "--no-acl", "--dbname="+bareDst, dumpFile)
		scanSrc := bareScan(b, app, tables)
		scanDst := bareScan(b, bareDst, tables)
		fpStart := time.Now()
		if _, err := pgsum.Fingerprint(ctx, drilltest.ConnConfig(b, app), pgsum.Options{}); err != nil {
			b.Fatal(err)
		}
		fpSrc := time.Since(fpStart)
		drilltest.DropDatabase(b, bareDst)

		// The drill.
		p := newProvider(b, func(c *localpg.Config) { c.BackupDir = dir })
		start := time.Now()
		rep, err := (&drill.Runner{Provider: p}).Run(ctx, drill.Options{App: app})
		total := time.Since(start)
		if err != nil {
			b.Fatalf("drill: %v", err)
		}
		step := func(name string) time.Duration {
			for _, s := range rep.Steps {
				if s.Name == name {
					return time.Duration(s.Seconds * float64(time.Second))
				}
			}
			return 0
		}
		parts := dump + restore + scanSrc + scanDst
		b.ReportMetric(float64(size>>20), "MB")
		b.ReportMetric(dump.Seconds(), "dump-s")
		b.ReportMetric(restore.Seconds(), "restore-s")
		b.ReportMetric(scanSrc.Seconds(), "scan-src-s")
		b.ReportMetric(scanDst.Seconds(), "scan-dst-s")
		b.ReportMetric(fpSrc.Seconds(), "checksum-src-s")
		b.ReportMetric(step(drill.StepVerify).Seconds(), "checksum-dst-s")
		b.ReportMetric(step(drill.StepCapture).Seconds(), "capture-s")
		b.ReportMetric(step(drill.StepRestore).Seconds(), "drill-restore-s")
		b.ReportMetric(total.Seconds(), "total-s")
		b.ReportMetric(total.Seconds()/parts.Seconds(), "overhead-ratio")
		b.ReportMetric(fpSrc.Seconds()/scanSrc.Seconds(), "checksum/scan-src")
		b.ReportMetric(step(drill.StepVerify).Seconds()/scanDst.Seconds(), "checksum/scan-dst")
	}
}

func timeIt(b *testing.B, bin string, args ...string) time.Duration {
	b.Helper()
	start := time.Now()
	if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
		b.Fatalf("%s: %v\n%s", bin, err, out)
	}
	return time.Since(start)
}

// bareScan is one sequential hash scan of each table, one after the other:
// the least work that reads every row's text form.
func bareScan(b *testing.B, db string, tables []string) time.Duration {
	b.Helper()
	ctx := context.Background()
	conn := drilltest.Connect(b, db)
	start := time.Now()
	for _, t := range tables {
		var sum *string
		if err := conn.QueryRow(ctx, `SELECT sum(hashtextextended(t::text, 0))::text FROM `+pgx.Identifier{t}.Sanitize()+` t`).Scan(&sum); err != nil {
			b.Fatal(err)
		}
	}
	return time.Since(start)
}
