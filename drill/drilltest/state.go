package drilltest

import (
	"context"
	"testing"

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
	cfg, err := pgxpool.ParseConfig(ServerURL())
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.Database = name
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if _, err := pgstate.Migrate(context.Background(), pool); err != nil {
		t.Fatal(err)
	}
	return pgstate.New(pool), name
}
