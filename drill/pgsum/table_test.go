package pgsum_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/restore-drill/restore-drill/drill/drilltest"
	"github.com/restore-drill/restore-drill/drill/pgsum"
)

// TestFingerprint_ErrorNamesTable makes one table unreadable (another
// session holds an exclusive lock and lock_timeout is short): the
// fingerprint fails fast, and its error names the table and wraps Postgres'.
func TestFingerprint_ErrorNamesTable(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)

	db := drilltest.CreateDatabase(t, "pgsum_lock")
	drilltest.Exec(t, db, `
CREATE TABLE a (v int); CREATE TABLE b (v int); CREATE TABLE c (v int);
CREATE TABLE "Locked One" (v int); CREATE TABLE e (v int); CREATE TABLE f (v int);`)
	locker := drilltest.Connect(t, db)
	tx, err := locker.Begin(ctx)
	requireNoError(t, err)
	t.Cleanup(func() { _ = tx.Rollback(ctx) })
	_, err = tx.Exec(ctx, `LOCK TABLE "Locked One" IN ACCESS EXCLUSIVE MODE`)
	requireNoError(t, err)

	cfg := drilltest.ConnConfig(t, db)
	cfg.RuntimeParams["lock_timeout"] = "200ms"
	_, err = pgsum.Fingerprint(ctx, cfg, pgsum.Options{Workers: 3})
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "55P03" {
		t.Fatalf("want lock_not_available, got %v", err)
	}
	if !strings.Contains(err.Error(), `hashing table "public"."Locked One"`) {
		t.Fatalf("error does not name the table: %v", err)
	}
	if _, ok := cfg.RuntimeParams["application_name"]; ok {
		t.Fatalf("Fingerprint changed the caller's config: %v", cfg.RuntimeParams)
	}
}
