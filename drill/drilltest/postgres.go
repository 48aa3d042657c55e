// Package drilltest holds test support shared by the drill packages: real
// Postgres databases made and dropped per test, and helpers to wait on
// progress without sleeping.
package drilltest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// ServerURL is the Postgres server tests use: TEST_DATABASE_URL, else the
// libpq defaults (the local socket, the current OS user).
func ServerURL() string { return os.Getenv("TEST_DATABASE_URL") }

// ConnConfig returns a connection config for database dbname on the test
// server ("" keeps the server URL's own database).
func ConnConfig(tb testing.TB, dbname string) *pgx.ConnConfig {
	tb.Helper()
	cfg, err := pgx.ParseConfig(ServerURL())
	if err != nil {
		tb.Fatalf("TEST_DATABASE_URL does not parse: %v", err)
	}
	if dbname != "" {
		cfg.Database = dbname
	}
	return cfg
}

// Connect opens a connection to dbname on the test server, closed at cleanup.
// No reachable server is a failure that says how to start one, never a skip.
func Connect(tb testing.TB, dbname string) *pgx.Conn {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, ConnConfig(tb, dbname))
	if err != nil {
		tb.Fatalf("cannot reach the test Postgres (%v); start it with "+
			"`pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start` "+
			"or point TEST_DATABASE_URL at one", err)
	}
	tb.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// CreateDatabase makes a new empty database named prefix_<random> and drops
// it when the test ends. It returns the name.
func CreateDatabase(tb testing.TB, prefix string) string {
	tb.Helper()
	name := strings.ToLower(prefix) + "_" + RandomSuffix()
	admin := Connect(tb, "")
	ctx := context.Background()
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		tb.Fatalf("create test database %s: %v", name, err)
	}
	tb.Cleanup(func() { DropDatabase(tb, name) })
	return name
}

// DropDatabase drops dbname if it exists, ending its sessions first.
func DropDatabase(tb testing.TB, name string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, ConnConfig(tb, ""))
	if err != nil {
		tb.Errorf("drop test database %s: %v", name, err)
		return
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		tb.Errorf("drop test database %s: %v", name, err)
	}
}

// Exec runs SQL statements on dbname, failing the test on error.
func Exec(tb testing.TB, dbname string, sql string) {
	tb.Helper()
	conn := Connect(tb, dbname)
	if _, err := conn.Exec(context.Background(), sql); err != nil {
		tb.Fatalf("exec on %s: %v\n%s", dbname, err, sql)
	}
}

// RandomSuffix returns 8 random lowercase hex characters.
func RandomSuffix() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// DrillDatabases lists the databases drills on the local server left for
// app: scratch databases, tagged by their setting restore_drill.scratch
// ("restore-drill scratch drill=<id> app=<app>"), and originals parked
// under <app>_orig_<id>. Tests call it to prove a drill left nothing behind.
func DrillDatabases(tb testing.TB, app string) []string {
	tb.Helper()
	conn := Connect(tb, "")
	rows, err := conn.Query(context.Background(), `SELECT datname FROM pg_database
		WHERE datname <> $1 AND (EXISTS (SELECT 1 FROM pg_db_role_setting s, unnest(s.setconfig) c
			WHERE s.setdatabase = pg_database.oid AND s.setrole = 0 AND c LIKE 'restore\_drill.scratch=restore-drill scratch %app=' || $1)
		   OR datname LIKE $1 || '\_orig\_%')
		ORDER BY datname`, app)
	if err != nil {
		tb.Fatalf("list the databases drills left for %s: %v", app, err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		tb.Fatalf("list the databases drills left for %s: %v", app, err)
	}
	return names
}
