package localpg_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/restore-drill/restore-drill/drill"
	"github.com/restore-drill/restore-drill/drill/drilltest"
	"github.com/restore-drill/restore-drill/drill/localpg"
)

// appSQL fills a test app: the suite's drill_items plus a few shapes.
const appSQL = `
CREATE TABLE drill_items (id int PRIMARY KEY, note text);
INSERT INTO drill_items SELECT g, 'item ' || g FROM generate_series(1, 50) g;
CREATE TABLE "Mixed Case" (v jsonb, b bytea, t timestamptz);
INSERT INTO "Mixed Case" SELECT jsonb_build_object('g', g), decode(md5(g::text), 'hex'), now() FROM generate_series(1, 20) g;
CREATE TABLE nopk (a int, b text);
INSERT INTO nopk VALUES (1, 'x'), (1, 'x'), (2, NULL);
`

func newProvider(t testing.TB, mutate ...func(*localpg.Config)) *localpg.Provider {
	t.Helper()
	cfg := localpg.Config{Server: drilltest.ConnConfig(t, ""), BackupDir: t.TempDir()}
	for _, m := range mutate {
		m(&cfg)
	}
	p, err := localpg.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// newApp makes an app database filled with appSQL, and drops it and every
// database a drill made for it at cleanup.
func newApp(t *testing.T) string {
	t.Helper()
	app := drilltest.CreateDatabase(t, "app")
	drilltest.Exec(t, app, appSQL)
	t.Cleanup(func() {
		for _, name := range leftovers(t, app) {
			drilltest.DropDatabase(t, name)
		}
	})
	return app
}

// dirs holds each conformance app's backup directory.
var dirs sync.Map

func inDir(dir string) func(*localpg.Config) { return func(c *localpg.Config) { c.BackupDir = dir } }

// leftovers lists the databases drills made for app.
func leftovers(t *testing.T, app string) []string { return drilltest.DrillDatabases(t, app) }

func TestProvider_Conformance(t *testing.T) {
	t.Parallel()
	h := harness()
	drilltest.ExerciseProvider(t, h)
}

func TestProvider_Emergency(t *testing.T) {
	t.Parallel()
	drilltest.ExerciseEmergency(t, harness())
}

func harness() drilltest.Harness {
	return drilltest.Harness{
		Setup: func(t *testing.T) (drill.Provider, string) {
			dir, app := t.TempDir(), newApp(t)
			dirs.Store(app, dir)
			return newProvider(t, inDir(dir)), app
		},
		Maintenance: func(t *testing.T, app string) bool {
			var limit int
			conn := drilltest.Connect(t, "")
			if err := conn.QueryRow(context.Background(), `SELECT datconnlimit FROM pg_database WHERE datname = $1`, app).Scan(&limit); err != nil {
				t.Fatal(err)
			}
			return limit == 0
		},
		Leftovers: leftovers,
		// Another process on the same machine shares the backup directory.
		Reopen: func(t *testing.T, app string) drill.Provider {
			dir, _ := dirs.Load(app)
			return newProvider(t, inDir(dir.(string)))
		},
		Exec: func(t *testing.T, db drill.Database, sql string) {
			conn := drilltest.Connect(t, "")
			var name string
			if err := conn.QueryRow(context.Background(), `SELECT datname FROM pg_database WHERE oid = $1::oid`, db.ID).Scan(&name); err != nil {
				t.Fatal(err)
			}
			drilltest.Exec(t, name, sql)
		},
		TryExec: func(db drill.Database, sql string) error {
			ctx := context.Background()
			conn, err := pgx.Connect(ctx, "")
			if err != nil {
				return err
			}
			defer conn.Close(ctx)
			var name string
			if err := conn.QueryRow(ctx, `SELECT datname FROM pg_database WHERE oid = $1::oid`, db.ID).Scan(&name); err != nil {
				return err
			}
			on, err := pgx.Connect(ctx, "dbname="+name)
			if err != nil {
				return err
			}
			defer on.Close(ctx)
			_, err = on.Exec(ctx, sql)
			return err
		},
	}
}

func run(t *testing.T, p drill.Provider, opts drill.Options) (*drill.Report, error) {
	t.Helper()
	r := &drill.Runner{Provider: p, Confirmer: drilltest.AppConfirmer("tester")}
	return r.Run(context.Background(), opts)
}

// A pg_restore that reports errors is a failed restore, with its errors in
// the report (postgres.md: a CHECK calling a function that reads an
// unqualified table loses the COPY under pg_restore's empty search_path).
func TestRestore_ErrorsFailTheDrill(t *testing.T) {
	t.Parallel()
	app := newApp(t)
	drilltest.Exec(t, app, failingCopySQL)
	rep, err := run(t, newProvider(t), drill.Options{App: app})
	if drill.ErrorCode(err) != drill.EFAILED {
		t.Fatalf("err %v, want a failed drill", err)
	}
	if !strings.Contains(rep.Error, "reported") || !strings.Contains(rep.Error, "failed restore") || !strings.Contains(rep.Error, "orders") {
		t.Errorf("report error %q does not carry pg_restore's errors", rep.Error)
	}
	if len(leftovers(t, app)) != 0 {
		t.Errorf("scratch database left behind")
	}
}

func TestRestore_CorruptOrTruncatedBackup(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, path string)
	}{
		{"Truncated", func(t *testing.T, path string) {
			st, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(path, st.Size()/2); err != nil {
				t.Fatal(err)
			}
		}},
		{"Garbage", func(t *testing.T, path string) {
			if err := os.WriteFile(path, []byte("this is not a dump"), 0o600); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			app := newApp(t)
			dir := t.TempDir()
			p := newProvider(t, func(c *localpg.Config) { c.BackupDir = dir })
			rep, err := run(t, p, drill.Options{App: app})
			if err != nil {
				t.Fatalf("first drill: %v", err)
			}
			path := filepath.Join(dir, app, rep.Backup.ID+".dump")
			tc.damage(t, path)
			// Keep the size in the metadata honest so the damage reaches
			// pg_restore rather than the size check.
			fixSize(t, filepath.Join(dir, app, rep.Backup.ID+".json"), path)
			rep2, err := run(t, p, drill.Options{App: app, Backup: drill.BackupRef{Kind: drill.BackupByID, Num: 1}})
			if drill.ErrorCode(err) != drill.EFAILED {
				t.Fatalf("err %v, want failed", err)
			}
			if !strings.Contains(rep2.Error, "b001") {
				t.Errorf("error %q does not name the backup", rep2.Error)
			}
			if len(leftovers(t, app)) != 0 {
				t.Errorf("scratch database left behind")
			}
		})
	}
}

func fixSize(t *testing.T, metaPath, dumpPath string) {
	t.Helper()
	st, err := os.Stat(dumpPath)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(metaPath)
	if err != nil {
		t.Fatal(err)
	}
	s := string(data)
	i := strings.Index(s, `"size_bytes": `)
	j := strings.Index(s[i:], ",")
	s = s[:i] + `"size_bytes": ` + strconv.FormatInt(st.Size(), 10) + s[i+j:]
	if err := os.WriteFile(metaPath, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

// A disk that fills up during the dump fails the capture with a sentence
// about space, and leaves no partial file.
func TestCapture_DiskFull(t *testing.T) {
	t.Parallel()
	app := newApp(t)
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, app), 0o700); err != nil {
		t.Fatal(err)
	}
	// pg_dump writes b001.dump.partial; make that /dev/full.
	if err := os.Symlink("/dev/full", filepath.Join(dir, app, "b001.dump.partial")); err != nil {
		t.Fatal(err)
	}
	p := newProvider(t, func(c *localpg.Config) { c.BackupDir = dir })
	rep, err := run(t, p, drill.Options{App: app})
	if drill.ErrorCode(err) != drill.EFAILED || !strings.Contains(rep.Error, "full") {
		t.Fatalf("err %v (report %q), want a failure about a full disk", err, rep.Error)
	}
	if _, err := os.Lstat(filepath.Join(dir, app, "b001.dump.partial")); !os.IsNotExist(err) {
		t.Errorf("partial dump left behind: %v", err)
	}
	list, err := p.Backups(context.Background(), app)
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Backups) != 1 || list.Backups[0].Status != drill.BackupFailed {
		t.Errorf("backups %+v, want b001 failed", list.Backups)
	}
}

func TestTools_MissingOrOlderThanServer(t *testing.T) {
	t.Parallel()
	old := filepath.Join(t.TempDir(), "pg_dump")
	if err := os.WriteFile(old, []byte("#!/bin/sh\necho 'pg_dump (PostgreSQL) 9.6.24'\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, bin, want string
	}{
		{"Missing", "/nonexistent/pg_dump", "not installed"},
		{"Older", old, "older than the server"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			app := newApp(t)
			p := newProvider(t, func(c *localpg.Config) { c.PgDump = tc.bin })
			rep, err := run(t, p, drill.Options{App: app})
			if drill.ErrorCode(err) != drill.ECONFIG || !strings.Contains(rep.Error, tc.want) {
				t.Fatalf("err %v (report %q), want a config error saying %q", err, rep.Error, tc.want)
			}
			if len(leftovers(t, app)) != 0 {
				t.Errorf("a database was created although the tools are unusable")
			}
		})
	}
}

func TestServer_UnreachableOrRefused(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, url, want string
	}{
		{"Unreachable", "postgres://root:s3cret-pw@127.0.0.1:1/postgres?connect_timeout=2", "cannot reach"},
		{"UnknownRole", "host=/var/run/postgresql user=no_such_role_xyz dbname=postgres password=s3cret-pw", "refused the login"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			parsed, err := pgx.ParseConfig(tc.url)
			if err != nil {
				t.Fatal(err)
			}
			p, err := localpg.New(localpg.Config{Server: parsed, BackupDir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			rep, err := run(t, p, drill.Options{App: "anyapp"})
			if drill.ErrorCode(err) != drill.ECONFIG || !strings.Contains(rep.Error, tc.want) {
				t.Fatalf("err %v (report %q), want config error %q", err, rep.Error, tc.want)
			}
			if strings.Contains(rep.Error, "s3cret-pw") {
				t.Errorf("the password leaked into the report: %q", rep.Error)
			}
		})
	}
}

// A database dropped while the drill runs fails the drill (it is not bad
// input), and the undo stack still cleans up.
func TestDrill_SourceDroppedMidway(t *testing.T) {
	t.Parallel()
	app := newApp(t)
	f := drilltest.NewFaulty(newProvider(t))
	f.After = func(method string, _ ...any) {
		if method == "Capture" {
			drilltest.DropDatabase(t, app)
		}
	}
	r := &drill.Runner{Provider: f, Confirmer: drilltest.AppConfirmer("tester")}
	rep, err := r.Run(context.Background(), drill.Options{App: app, Mode: drill.ModeFull})
	if err == nil || drill.ErrorCode(err) != drill.ENOTFOUND || !strings.Contains(rep.Error, app) {
		t.Fatalf("err %v (report %q), want not found naming the app", err, rep.Error)
	}
	if len(leftovers(t, app)) != 0 {
		t.Errorf("scratch database left behind: %v", leftovers(t, app))
	}
}

func TestCheckAppName(t *testing.T) {
	t.Parallel()
	p := newProvider(t)
	for _, ok := range []string{"demo", "my-app", "App_2", strings.Repeat("a", 63)} {
		if err := p.CheckAppName(ok); err != nil {
			t.Errorf("CheckAppName(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "a b", "x;drop", "é", strings.Repeat("a", 64), "template1", "postgres", "a/b", "--mode"} {
		err := p.CheckAppName(bad)
		if drill.ErrorCode(err) != drill.EINVALID {
			t.Errorf("CheckAppName(%q) = %v, want invalid", bad, err)
		}
	}
}

// Verify mode is exact with zero downtime: production keeps taking writes
// during the whole drill, and the comparison is still exact and passes,
// because fingerprint and dump read one exported snapshot.
func TestVerify_ExactWhileProductionWrites(t *testing.T) {
	t.Parallel()
	app := newApp(t)
	ctx, stop := context.WithCancel(context.Background())
	writes := make(chan int, 1)
	go func() {
		conn := drilltest.Connect(t, app)
		n := 0
		for ctx.Err() == nil {
			if _, err := conn.Exec(ctx, `INSERT INTO drill_items SELECT coalesce(max(id), 0) + 1, 'live' FROM drill_items`); err != nil {
				break
			}
			if _, err := conn.Exec(ctx, `UPDATE "Mixed Case" SET t = now() WHERE v->>'g' = '1'`); err != nil {
				break
			}
			n++
		}
		writes <- n
	}()
	rep, err := run(t, newProvider(t), drill.Options{App: app})
	stop()
	n := <-writes
	if err != nil {
		t.Fatalf("drill failed while production was writing: %v", err)
	}
	if !rep.Exact || rep.Result != drill.Passed {
		t.Fatalf("comparison exact=%v result=%s", rep.Exact, rep.Result)
	}
	if n < 5 {
		t.Fatalf("only %d writes happened during the drill: the test proves nothing", n)
	}
	t.Logf("%d write transactions committed during the drill", n)
}

// An emergency restore on the same server keeps who owns and may read the
// data (the app's role must still reach it), and an in-place restore copes
// with large objects, which live outside any schema.
func TestEmergency_KeepsOwnersGrantsAndLargeObjects(t *testing.T) {
	t.Parallel()
	role := "app_role_" + drilltest.RandomSuffix()
	reader := "app_reader_" + drilltest.RandomSuffix()
	drilltest.Exec(t, "", "CREATE ROLE "+role+"; CREATE ROLE "+reader)
	t.Cleanup(func() { drilltest.Exec(t, "", "DROP ROLE IF EXISTS "+role+"; DROP ROLE IF EXISTS "+reader) })
	for _, into := range []drill.Into{drill.IntoProduction, drill.IntoNew} {
		t.Run(string(into), func(t *testing.T) {
			app := newApp(t)
			drilltest.Exec(t, app, `
				CREATE TABLE owned (id int PRIMARY KEY, v text);
				INSERT INTO owned SELECT g, 'v' || g FROM generate_series(1, 10) g;
				ALTER TABLE owned OWNER TO `+role+`;
				GRANT SELECT ON owned TO `+reader+`;
				SELECT lo_from_bytea(0, 'large object payload');`)
			t.Cleanup(func() {
				drilltest.Exec(t, "", "REASSIGN OWNED BY "+role+" TO CURRENT_USER")
				for _, db := range append(leftovers(t, app), app) {
					drilltest.DropDatabase(t, db)
				}
			})
			p := newProvider(t)
			b, err := (&drill.Runner{Provider: p}).Capture(context.Background(), app)
			if err != nil {
				t.Fatal(err)
			}
			drilltest.Exec(t, app, `DELETE FROM owned WHERE id > 3`)
			rep, err := (&drill.Runner{Provider: p, Confirmer: drilltest.AppConfirmer("U-ONCALL")}).Restore(context.Background(),
				drill.RestoreOptions{App: app, Backup: drill.BackupRef{Kind: drill.BackupByID, Num: b.Num}, Into: into})
			if err != nil {
				t.Fatalf("restore: %v %+v", err, rep.Steps)
			}
			conn := drilltest.Connect(t, app)
			var owner, acl string
			var rows, los int
			if err := conn.QueryRow(context.Background(), `SELECT tableowner, coalesce((SELECT relacl::text FROM pg_class WHERE relname = 'owned'), ''),
				(SELECT count(*) FROM owned), (SELECT count(*) FROM pg_largeobject_metadata) FROM pg_tables WHERE tablename = 'owned'`).Scan(&owner, &acl, &rows, &los); err != nil {
				t.Fatal(err)
			}
			if owner != role || !strings.Contains(acl, reader+"=r/") || rows != 10 || los != 1 {
				t.Errorf("after the restore: owner %s, acl %s, %d rows, %d large objects; want %s, %s may read, 10 rows, 1", owner, acl, rows, los, role, reader)
			}
		})
	}
}

// A drill whose lock connection to the state database dies keeps its drill:
// it takes the lock again on a new connection and goes on, and nobody takes
// it for dead meanwhile. A drill whose lock another process took (resuming
// it) stops at once, saying so (it was not cancelled), and undoes itself.
func TestDrill_LockConnectionLostAndTaken(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		taken bool
	}{{"ConnectionLost", false}, {"TakenByAnother", true}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			app := newApp(t)
			store := drilltest.NewStateStore(t)
			id := drill.NewDrillID()
			f := drilltest.NewFaulty(newProvider(t))
			f.After = func(method string, _ ...any) {
				if method != "Capture" {
					return
				}
				// Kill the session that holds the drill's advisory lock (in
				// the state database).
				var stateDB string
				if err := drilltest.Connect(t, "").QueryRow(context.Background(), `SELECT d.datname FROM pg_locks l
					JOIN pg_database d ON d.oid = l.database
					WHERE l.locktype = 'advisory' AND l.granted AND l.objid = hashtext($1)::oid`, id).Scan(&stateDB); err != nil {
					t.Error(err)
					return
				}
				drilltest.Exec(t, "", `SELECT pg_terminate_backend(l.pid) FROM pg_locks l
					WHERE l.locktype = 'advisory' AND l.granted AND l.objid = hashtext('`+id+`')::oid`)
				if tc.taken {
					// Another process takes the lock before the owner can.
					thief := drilltest.Connect(t, stateDB)
					if _, err := thief.Exec(context.Background(), `SELECT pg_advisory_lock(29284, hashtext($1))`, id); err != nil {
						t.Error(err)
					}
				}
				select {
				case <-store.Lost(id):
					if !tc.taken {
						t.Error("the owner gave up a drill nobody else took")
					}
				case <-time.After(6 * time.Second):
					if tc.taken {
						t.Error("the owner did not notice that another process took its drill")
					}
				}
			}
			r := &drill.Runner{Provider: f, Journal: store}
			rep, err := r.Run(context.Background(), drill.Options{App: app, DrillID: id})
			if !tc.taken {
				if err != nil {
					t.Fatalf("the drill failed after its lock connection died: %v %+v", err, rep.Steps)
				}
				return
			}
			if drill.ErrorCode(err) != drill.EFAILED || !strings.Contains(drill.ErrorMessage(err), "another process took over") {
				t.Fatalf("err %v, want the drill stopped, saying another process took it over; steps %+v", err, rep.Steps)
			}
			if !slices.Contains(rep.Undone, drill.StepProvision) || len(leftovers(t, app)) != 0 {
				t.Errorf("undone %v, leftovers %v", rep.Undone, leftovers(t, app))
			}
		})
	}
}
