package botriver

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
)

// migrationLock serialises River's migrations across processes starting at
// once. It is a one-key (bigint) session advisory lock, distinct from the
// state database's own migration lock ("rd-mig") and from the drill and app
// locks (two-key form, another lock space).
const migrationLock = 0x72642d726976 // "rd-riv"

// Migrate applies River's own migrations (river_job, river_leader, ...) to
// the state database, up to the version this River release ships. It is
// idempotent, and safe when several processes start at once.
//
// rivermigrate takes no lock of its own: it reads river_migration, then
// applies each missing version in its own transaction, so two processes
// starting together both try to apply version 1 and one of them fails. Its
// single-transaction variant (MigrateTx) is deprecated because some River
// migrations cannot share a transaction, so Migrate holds a session advisory
// lock on a connection of its own for the whole run instead: the second
// process waits, then finds every version applied. The lock's connection is
// closed, not handed back to the pool, so the lock cannot outlive Migrate.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	pc, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("migrate River's tables: %w", err)
	}
	conn := pc.Hijack()
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, int64(migrationLock)); err != nil {
		return fmt.Errorf("migrate River's tables: wait for other processes migrating: %w", err)
	}
	// rivermigrate logs every version applied, and "no migrations to apply"
	// at each start, at info: keep its warnings and errors only.
	m, err := rivermigrate.New(riverpgxv5.New(pool), &rivermigrate.Config{Logger: quiet(slog.Default(), slog.LevelWarn)})
	if err != nil {
		return fmt.Errorf("migrate River's tables: %w", err)
	}
	if _, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return fmt.Errorf("migrate River's tables: %w", err)
	}
	return nil
}
