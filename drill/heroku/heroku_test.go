package heroku_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/restore-drill/restore-drill/drill"
	"github.com/restore-drill/restore-drill/drill/drilltest"
	"github.com/restore-drill/restore-drill/drill/heroku"
	"github.com/restore-drill/restore-drill/drill/heroku/herokutest"
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

// fastTransport retries at once, so tests never wait on backoff.
func fastTransport() *heroku.Transport {
	return &heroku.Transport{MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, LowDelay: time.Millisecond}
}

func newProvider(t *testing.T, s *herokutest.Server, mutate ...func(*heroku.Config)) *heroku.Provider {
	t.Helper()
	cfg := heroku.Config{
		APIKey: herokutest.APIKey, APIURL: s.URL, DataAPIURL: s.URL,
		PollInterval: time.Millisecond, MaxPollInterval: 4 * time.Millisecond,
		Transport: fastTransport(),
	}
	for _, m := range mutate {
		m(&cfg)
	}
	p, err := heroku.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// newApp adds an app filled with appSQL, with a schedule and a backup an
// hour old, so that preflight passes.
func newApp(t *testing.T, s *herokutest.Server, mutate ...func(*herokutest.AppOptions)) string {
	t.Helper()
	opts := herokutest.AppOptions{SQL: appSQL, Backups: []time.Duration{time.Hour}}
	for _, m := range mutate {
		m(&opts)
	}
	name := "app-" + drilltest.RandomSuffix()
	if _, err := s.AddApp(name, opts); err != nil {
		t.Fatal(err)
	}
	return name
}

// leftovers are the add-ons drills created that still exist on any app.
func leftovers(s *herokutest.Server, apps ...string) []string {
	var out []string
	for _, app := range apps {
		for _, a := range s.AddOns(app) {
			if strings.HasPrefix(a.Name, "restore-drill-") {
				out = append(out, a.Name)
			}
		}
	}
	return out
}

func TestProvider_Conformance(t *testing.T) {
	t.Parallel()
	drilltest.ExerciseProvider(t, harness())
}

func TestProvider_Emergency(t *testing.T) {
	t.Parallel()
	drilltest.ExerciseEmergency(t, harness())
}

// harness is the conformance suites' view of the fake: one fake server per
// app, found again by app or by add-on.
func harness() drilltest.Harness {
	var servers sync.Map // app → *herokutest.Server
	server := func(t *testing.T, app string) *herokutest.Server {
		v, ok := servers.Load(app)
		if !ok {
			t.Fatalf("no fake server for %s", app)
		}
		return v.(*herokutest.Server)
	}
	return drilltest.Harness{
		// Every app of the suites has what moves with DATABASE on Heroku:
		// a connection pooler, and a release phase to wait for.
		Setup: func(t *testing.T) (drill.Provider, string) {
			s := herokutest.NewServer(t)
			app := newApp(t, s, func(o *herokutest.AppOptions) {
				o.Plan, o.Pooler, o.Formation = "standard-0", true, map[string]int{"web": 1, "release": 0}
			})
			servers.Store(app, s)
			return newProvider(t, s), app
		},
		Maintenance: func(t *testing.T, app string) bool { return server(t, app).Maintenance(app) },
		Leftovers:   func(t *testing.T, app string) []string { return leftovers(server(t, app), app) },
		Reopen:      func(t *testing.T, app string) drill.Provider { return newProvider(t, server(t, app)) },
		Companions: func(t *testing.T, app string) map[string]string {
			// A pooler that vanished reaches nothing: "".
			out := map[string]string{herokutest.PoolerName: ""}
			for _, a := range server(t, app).Attachments(app) {
				if a.Namespace == herokutest.PoolerNamespace {
					out[a.Name] = a.AddonID
				}
			}
			return out
		},
		Exec: func(t *testing.T, db drill.Database, sql string) {
			var found bool
			servers.Range(func(_, v any) bool {
				s := v.(*herokutest.Server)
				if s.DatabaseOf(db.ID) != "" {
					found = true
					if err := s.Exec(db.ID, sql); err != nil {
						t.Fatal(err)
					}
					return false
				}
				return true
			})
			if !found {
				t.Fatalf("no add-on %s on any fake server", db.ID)
			}
		},
		TryExec: func(db drill.Database, sql string) error {
			err := fmt.Errorf("no add-on %s on any fake server", db.ID)
			servers.Range(func(_, v any) bool {
				s := v.(*herokutest.Server)
				if s.DatabaseOf(db.ID) != "" {
					err = s.Exec(db.ID, sql)
					return false
				}
				return true
			})
			return err
		},
	}
}

func run(t *testing.T, p drill.Provider, opts drill.Options) (*drill.Report, error) {
	t.Helper()
	r := &drill.Runner{Provider: p, Confirmer: drilltest.AppConfirmer("tester"), UndoTimeout: time.Minute}
	return r.Run(context.Background(), opts)
}

// Heroku goes on with a restore after the process watching it dies. An
// in-place restore (a rollback resumed by another process, or a new
// attempt) first cancels a restore still running onto DATABASE and waits
// for it: two restores writing one database would leave a mix of both,
// here the dead process's backup written over the one just restored.
func TestRestoreProduction_CancelsARestoreStillRunningOntoDatabase(t *testing.T) {
	t.Parallel()
	s := herokutest.NewServer(t, herokutest.WithTransferSteps(-1))
	app := newApp(t, s)
	p := newProvider(t, s)
	ctx := context.Background()
	prod, err := p.Serving(ctx, app)
	if err != nil {
		t.Fatal(err)
	}
	list, err := p.Backups(ctx, app)
	if err != nil || len(list.Backups) != 1 {
		t.Fatalf("backups %+v %v", list, err)
	}
	want := list.Backups[0]
	if err := s.Exec(prod.ID, `DELETE FROM drill_items WHERE id > 10`); err != nil {
		t.Fatal(err)
	}
	other, err := p.Capture(ctx, app, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.SlowRestores(2 * time.Second)
	if err := s.StartRestore(app, other.Backup.Num); err != nil {
		t.Fatal(err)
	}
	s.SlowRestores(0)
	if err := p.SetMaintenance(ctx, app, true); err != nil {
		t.Fatal(err)
	}
	proof := drill.Confirmation{User: "U-ONCALL", Typed: drill.ProductionProof(app, want.ID)}
	if _, err := p.RestoreProduction(ctx, app, want, proof, nil); err != nil {
		t.Fatalf("restore in place: %v", err)
	}
	s.WaitRestores()
	fp, err := p.Fingerprint(ctx, prod)
	if err != nil {
		t.Fatal(err)
	}
	if i := slices.IndexFunc(fp.Tables, func(tb drill.TableSum) bool { return tb.Name == "drill_items" }); i < 0 || fp.Tables[i].Rows != 50 {
		t.Errorf("DATABASE holds no drill_items, or not the 50 of %s, once every restore ended: %+v", want.ID, fp.Tables)
	}
	if err := p.SetMaintenance(ctx, app, false); err != nil {
		t.Fatal(err)
	}
}
