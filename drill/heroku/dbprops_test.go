package heroku_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/restore-drill/restore-drill/drill"
	"github.com/restore-drill/restore-drill/drill/drilltest"
	"github.com/restore-drill/restore-drill/drill/heroku/herokutest"
)

// setProps gives the database of add-on id, as its own role (the app's
// credential), a search_path, a statement_timeout and a comment.
const setProps = `DO $$ BEGIN
	EXECUTE format('ALTER DATABASE %I SET search_path = shop, public', current_database());
	EXECUTE format('ALTER DATABASE %I SET statement_timeout = %L', current_database(), '7s');
	EXECUTE format('COMMENT ON DATABASE %I IS %L', current_database(), 'the shop''s data');
END $$`

// propsOf reads the database settings and comment of add-on id's database.
func propsOf(t *testing.T, s *herokutest.Server, id string) []string {
	t.Helper()
	conn := drilltest.Connect(t, s.DatabaseOf(id))
	rows, err := conn.Query(context.Background(), `
SELECT 'setting ' || c FROM pg_db_role_setting r, unnest(r.setconfig) c
	WHERE r.setrole = 0 AND r.setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database())
UNION ALL
SELECT 'comment ' || shobj_description((SELECT oid FROM pg_database WHERE datname = current_database()), 'pg_database')
ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for rows.Next() {
		var l *string
		if err := rows.Scan(&l); err != nil {
			t.Fatal(err)
		}
		if l != nil {
			out = append(out, *l)
		}
	}
	return out
}

// Issue 10 item 7 on Heroku: a restore onto a new database (a drill's
// scratch database, restore --into new) brings the source database's own
// settings and comment, which Heroku's pg_restore leaves out, so the app's
// unqualified queries still find their tables.
func TestRestore_CarriesDatabaseSettingsAndComment(t *testing.T) {
	t.Parallel()
	s := herokutest.NewServer(t)
	app := newApp(t, s)
	p := newProvider(t, s)
	ctx := context.Background()
	prod, err := p.Serving(ctx, app)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Exec(prod.ID, setProps); err != nil {
		t.Fatal(err)
	}
	want := propsOf(t, s, prod.ID)
	if !slices.Contains(want, "setting search_path=shop, public") || len(want) != 3 {
		t.Fatalf("fixture properties %q", want)
	}
	rep, err := run(t, p, drill.Options{App: app, Keep: true})
	if err != nil || rep.Result != drill.Passed {
		t.Fatalf("drill: %v %s", err, rep.Error)
	}
	if got := propsOf(t, s, rep.Scratch.ID); !slices.Equal(got, want) {
		t.Errorf("the drill's scratch database has %q, want the app's %q", got, want)
	}
	b, err := (&drill.Runner{Provider: p}).Capture(ctx, app)
	if err != nil {
		t.Fatal(err)
	}
	r := &drill.Runner{Provider: p, Confirmer: drilltest.AppConfirmer("U-ONCALL"), UndoTimeout: time.Minute}
	res, err := r.Restore(ctx, drill.RestoreOptions{App: app, Backup: drill.BackupRef{Kind: drill.BackupByID, Num: b.Num}, Into: drill.IntoNew, NoSafetyBackup: true})
	if err != nil || res.Result != drill.Passed {
		t.Fatalf("restore --into new: %v %s", err, res.Error)
	}
	serving, err := p.Serving(ctx, app)
	if err != nil || serving.ID == prod.ID {
		t.Fatalf("serving %+v %v, want the restored database", serving, err)
	}
	if got := propsOf(t, s, serving.ID); !slices.Equal(got, want) {
		t.Errorf("the restored database serving %s has %q, want the original's %q", app, got, want)
	}
}
