package localpg_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/restore-drill/restore-drill/drill"
	"github.com/restore-drill/restore-drill/drill/drilltest"
)

// dbProps reads the database-level properties of dbname the way a person
// would check them: owner, comment, access, settings.
func dbProps(t *testing.T, dbname string) []string {
	t.Helper()
	rows, err := drilltest.Connect(t, "").Query(context.Background(), `
		SELECT 'owner ' || pg_get_userbyid(datdba) FROM pg_database WHERE datname = $1
		UNION ALL SELECT 'comment ' || shobj_description(oid, 'pg_database') FROM pg_database
			WHERE datname = $1 AND shobj_description(oid, 'pg_database') IS NOT NULL
		UNION ALL SELECT 'access ' || a::text FROM pg_database, unnest(datacl) a WHERE datname = $1
		UNION ALL SELECT 'setting ' || coalesce(pg_get_userbyid(nullif(setrole, 0)) || ': ', '') || c
			FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase, unnest(setconfig) c
			WHERE d.datname = $1 AND c NOT LIKE 'restore\_drill.%'`, dbname)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var l string
		if err := rows.Scan(&l); err != nil {
			t.Fatal(err)
		}
		out = append(out, l)
	}
	slices.Sort(out)
	return out
}

// propsApp makes an app whose database has its own owner, access (CONNECT
// revoked from PUBLIC, granted to a reader), settings and a comment.
func propsApp(t *testing.T) (app string, want []string) {
	t.Helper()
	owner, reader := "props_owner_"+drilltest.RandomSuffix(), "props_reader_"+drilltest.RandomSuffix()
	drilltest.Exec(t, "", "CREATE ROLE "+owner+"; CREATE ROLE "+reader)
	t.Cleanup(func() { drilltest.Exec(t, "", "DROP ROLE IF EXISTS "+owner+"; DROP ROLE IF EXISTS "+reader) })
	app = newApp(t)
	drilltest.Exec(t, "", `ALTER DATABASE `+app+` OWNER TO `+owner+`;
		REVOKE CONNECT ON DATABASE `+app+` FROM PUBLIC;
		GRANT CONNECT ON DATABASE `+app+` TO `+reader+`;
		ALTER DATABASE `+app+` SET search_path = app, public;
		ALTER DATABASE `+app+` SET statement_timeout = '5min';
		ALTER ROLE `+reader+` IN DATABASE `+app+` SET work_mem = '8MB';
		COMMENT ON DATABASE `+app+` IS E'orders; it''s the app\n-- DATABASE `+app+` not a header;'`)
	t.Cleanup(func() {
		for _, db := range append(leftovers(t, app), app) {
			drilltest.DropDatabase(t, db)
		}
	})
	return app, dbProps(t, app)
}

// restore --into new carries the database's own properties over to the
// new database, and a drill's scratch database carries them too, so the
// drill tests what the incident restore does.
func TestRestoreIntoNew_CarriesDatabaseProperties(t *testing.T) {
	t.Parallel()
	app, want := propsApp(t)
	if len(want) < 7 {
		t.Fatalf("fixture properties %q", want)
	}
	p := newProvider(t)
	rep, err := run(t, p, drill.Options{App: app, Keep: true})
	if err != nil || rep.Result != drill.Passed {
		t.Fatalf("drill: %v %+v", err, rep)
	}
	if got := dbProps(t, rep.Scratch.Name); !slices.Equal(got, want) {
		t.Errorf("the drill's scratch database has\n%q\nwant the app's\n%q", got, want)
	}
	b, err := (&drill.Runner{Provider: p}).Capture(context.Background(), app)
	if err != nil {
		t.Fatal(err)
	}
	res, err := (&drill.Runner{Provider: p, Confirmer: drilltest.AppConfirmer("U-ONCALL")}).Restore(context.Background(),
		drill.RestoreOptions{App: app, Backup: drill.BackupRef{Kind: drill.BackupByID, Num: b.Num}, Into: drill.IntoNew, NoSafetyBackup: true})
	if err != nil {
		t.Fatalf("restore: %v %+v", err, res.Steps)
	}
	if got := dbProps(t, app); !slices.Equal(got, want) {
		t.Errorf("the restored database serving %s has\n%q\nwant the original's\n%q", app, got, want)
	}
}

// A restore that does not bring back a property the source had (here the
// backup's record says the source had one more setting) fails, naming it.
func TestRestore_MissingDatabaseSettingFails(t *testing.T) {
	t.Parallel()
	app, _ := propsApp(t)
	dir := t.TempDir()
	p := newProvider(t, inDir(dir))
	b, err := (&drill.Runner{Provider: p}).Capture(context.Background(), app)
	if err != nil {
		t.Fatal(err)
	}
	metaPath := filepath.Join(dir, app, b.ID+".json")
	data, err := os.ReadFile(metaPath)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	m["database_props"] = append(m["database_props"].([]any), "setting lock_timeout=3s")
	data, _ = json.Marshal(m)
	if err := os.WriteFile(metaPath, data, 0o600); err != nil {
		t.Fatal(err)
	}
	rep, err := run(t, p, drill.Options{App: app, Backup: drill.BackupRef{Kind: drill.BackupByID, Num: b.Num}})
	if err == nil || !strings.Contains(rep.Error, "missing setting lock_timeout=3s") {
		t.Fatalf("err %v, report error %q: want the drill failed naming the missing setting", err, rep.Error)
	}
}

// A database without a public schema takes the canary (in the drill's own
// schema) and its drill passes.
func TestDrill_DatabaseWithoutPublicSchema(t *testing.T) {
	t.Parallel()
	app := drilltest.CreateDatabase(t, "nopublic")
	drilltest.Exec(t, app, `DROP SCHEMA public CASCADE; CREATE SCHEMA app;
		CREATE TABLE app.drill_items (id int PRIMARY KEY, note text);
		INSERT INTO app.drill_items SELECT g, 'n' || g FROM generate_series(1, 10) g;`)
	t.Cleanup(func() {
		for _, name := range leftovers(t, app) {
			drilltest.DropDatabase(t, name)
		}
	})
	rep, err := run(t, newProvider(t), drill.Options{App: app})
	if err != nil || rep.Result != drill.Passed {
		t.Fatalf("drill: %v %+v", err, rep)
	}
}
