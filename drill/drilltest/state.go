package drilltest

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/restore-drill/restore-drill/drill/pgstate"
)

// NewStateStore makes a state database for the test, migrated, and returns
// its store.
func NewStateStore(t testing.TB) *pgstate.Store {
	t.Helper()
	s, _ := NewNamedStateStore(t)
	return s
}

// NewNamedStateStore is NewStateStore, also returning the database's name,
// for tests that read the state tables directly.
func NewNamedStateStore(t testing.TB) (*pgstate.Store, string) {
	t.Helper()
	name := CreateDatabase(t, "state")
	return openState(t, name, ""), name
}

// OpenStateStore opens the test's state database name again, as another
// process would: a store with its own pool.
func OpenStateStore(t testing.TB, name string) *pgstate.Store {
	t.Helper()
	return openState(t, name, "")
}

// openState opens the state database name as role (the server URL's own
// when empty), migrated, closed at cleanup.
func openState(t testing.TB, name, role string) *pgstate.Store {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(ServerURL())
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.Database = name
	if role != "" {
		cfg.ConnConfig.User = role
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if _, err := pgstate.Migrate(context.Background(), pool); err != nil {
		t.Fatal(err)
	}
	return pgstate.New(pool)
}

// StateOutage stands for an outage of a state database: its role can no
// longer log in and its sessions are ended, then it comes back. Only the
// sessions of the test's own role are ended, never anyone else's.
type StateOutage struct {
	tb   testing.TB
	role string
}

// NewOutageStateStore makes a state database for the test owned by a role
// of its own (not a superuser, unique name), migrated, and returns its
// store, connected as that role, and the outage that can stop it.
func NewOutageStateStore(t testing.TB) (*pgstate.Store, *StateOutage) {
	t.Helper()
	role := "state_role_" + RandomSuffix()
	Exec(t, "", "CREATE ROLE "+role+" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE")
	name := "state_" + RandomSuffix()
	Exec(t, "", "CREATE DATABASE "+name+" OWNER "+role)
	t.Cleanup(func() {
		DropDatabase(t, name)
		Exec(t, "", "DROP ROLE IF EXISTS "+role)
	})
	return openState(t, name, role), &StateOutage{tb: t, role: role}
}

// Begin starts the outage: the role may no longer log in, and its
// sessions are ended. It may run on any goroutine.
func (o *StateOutage) Begin() {
	o.exec("ALTER ROLE " + o.role + " NOLOGIN")
	o.exec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '" + o.role + "' AND pid <> pg_backend_pid()")
}

// End ends the outage: the role may log in again. It may run on any
// goroutine.
func (o *StateOutage) End() { o.exec("ALTER ROLE " + o.role + " LOGIN") }

func (o *StateOutage) exec(sql string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, ConnConfig(o.tb, ""))
	if err != nil {
		o.tb.Errorf("state outage: %v", err)
		return
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		o.tb.Errorf("state outage: %s: %v", sql, err)
	}
}
