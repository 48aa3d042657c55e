// Package pgstate keeps restore-drill's own state in Postgres: drills, the
// step journal with undo records, confirmations, schedules, the freeze and
// an append-only audit log. It implements drill.ResumeJournal; a drill's
// owner holds session-level advisory locks, which Postgres releases the
// moment the owner's connection dies, so a dead owner is recognised at once
// and a live one is never touched. It implements drill.Parker too: a drill
// parked on a confirmation is owned by no process and holds its app by its
// row until it is taken up again, or until its confirmation has expired.
package pgstate

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// migrations are applied in order, each once, at start-up. Never edit one
// that has shipped: add another.
func migrations() []string {
	return []string{
		// 1: drills, steps, undo, confirmations, audit, schedules, freeze.
		`CREATE TABLE drills (
			drill_id   text PRIMARY KEY,
			app        text NOT NULL,
			provider   text NOT NULL,
			mode       text NOT NULL,
			requester  text NOT NULL DEFAULT '',
			channel    text NOT NULL DEFAULT '',
			thread_ts  text NOT NULL DEFAULT '',
			keep       boolean NOT NULL DEFAULT false,
			force      boolean NOT NULL DEFAULT false,
			status     text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'passed', 'failed')),
			owner      text NOT NULL DEFAULT '',
			started_at timestamptz NOT NULL,
			ended_at   timestamptz,
			report     jsonb
		);
		CREATE INDEX drills_app_started ON drills (app, started_at DESC);
		CREATE INDEX drills_running ON drills (status) WHERE status = 'running';
		CREATE TABLE drill_steps (
			id       bigserial PRIMARY KEY,
			drill_id text NOT NULL REFERENCES drills ON DELETE CASCADE,
			name     text NOT NULL,
			status   text NOT NULL,
			seconds  double precision NOT NULL DEFAULT 0,
			error    text NOT NULL DEFAULT '',
			note     text NOT NULL DEFAULT '',
			at       timestamptz NOT NULL DEFAULT now()
		);
		CREATE INDEX drill_steps_drill ON drill_steps (drill_id, id);
		CREATE TABLE drill_undo (
			id       bigserial PRIMARY KEY,
			drill_id text NOT NULL REFERENCES drills ON DELETE CASCADE,
			record   jsonb NOT NULL,
			done_at  timestamptz
		);
		CREATE INDEX drill_undo_drill ON drill_undo (drill_id, id);
		CREATE TABLE confirmations (
			id       bigserial PRIMARY KEY,
			drill_id text NOT NULL REFERENCES drills ON DELETE CASCADE,
			step     text NOT NULL,
			user_id  text NOT NULL,
			typed    text NOT NULL,
			at       timestamptz NOT NULL
		);
		CREATE TABLE audit_log (
			id       bigserial PRIMARY KEY,
			at       timestamptz NOT NULL DEFAULT now(),
			actor    text NOT NULL DEFAULT '',
			action   text NOT NULL,
			app      text NOT NULL DEFAULT '',
			drill_id text NOT NULL DEFAULT '',
			detail   text NOT NULL DEFAULT ''
		);
		CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN RAISE EXCEPTION 'the audit log is append-only'; END $$;
		CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_log
			FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
		CREATE TABLE schedules (
			app        text PRIMARY KEY,
			spec       text NOT NULL,
			mode       text NOT NULL DEFAULT 'verify',
			channel    text NOT NULL DEFAULT '',
			created_by text NOT NULL DEFAULT '',
			created_at timestamptz NOT NULL DEFAULT now(),
			last_run   timestamptz
		);
		CREATE TABLE drill_freeze (
			id     int PRIMARY KEY CHECK (id = 1),
			frozen boolean NOT NULL,
			by     text NOT NULL DEFAULT '',
			reason text NOT NULL DEFAULT '',
			at     timestamptz NOT NULL DEFAULT now()
		);`,
		// 2: confirmations a drill waits for, shared by every bot process:
		// a click may reach one process and the submission another.
		`CREATE TABLE pending_confirmations (
			id          text PRIMARY KEY,
			drill_id    text NOT NULL,
			app         text NOT NULL,
			step        text NOT NULL DEFAULT '',
			action      text NOT NULL DEFAULT '',
			expect      text NOT NULL,
			requester   text NOT NULL DEFAULT '',
			plan        jsonb NOT NULL DEFAULT '[]',
			channel     text NOT NULL DEFAULT '',
			thread_ts   text NOT NULL DEFAULT '',
			prompt_ts   text NOT NULL DEFAULT '',
			expires_at  timestamptz NOT NULL,
			state       text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'confirmed', 'expired', 'cancelled')),
			by_user     text NOT NULL DEFAULT '',
			typed       text NOT NULL DEFAULT '',
			resolved_at timestamptz,
			created_at  timestamptz NOT NULL DEFAULT now()
		);
		CREATE INDEX pending_confirmations_drill ON pending_confirmations (drill_id);
		CREATE INDEX pending_confirmations_open ON pending_confirmations (expires_at) WHERE state = 'pending';`,
		// 3: the owner's heartbeat, so that a live owner whose lock
		// connection died is not taken for dead.
		`ALTER TABLE drills ADD COLUMN last_seen timestamptz NOT NULL DEFAULT now();`,
		// 4: a cancel asked for in one process, carried out by the owner.
		`ALTER TABLE drills ADD COLUMN cancel_requested_by text;`,
		// 5: a drill parked on a confirmation, owned by no process: what it
		// needs to go on, the confirmation it waits for and its expiry.
		`ALTER TABLE drills ADD COLUMN checkpoint jsonb,
			ADD COLUMN parked_ticket text,
			ADD COLUMN parked_until timestamptz;`,
		// 6: the queued job a parked drill waits with, kept with its
		// confirmation so that whichever process continues it can.
		`ALTER TABLE pending_confirmations ADD COLUMN job jsonb;`,
	}
}

// migrationLock serialises migrations across processes starting at once.
const migrationLock = 0x72642d6d6967 // "rd-mig"

// Migrate applies the migrations not yet applied and returns how many it
// applied.
func Migrate(ctx context.Context, pool *pgxpool.Pool) (int, error) {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return 0, fmt.Errorf("migrate the state database: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, int64(migrationLock)); err != nil {
		return 0, fmt.Errorf("migrate the state database: %w", err)
	}
	defer func() {
		_, _ = conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, int64(migrationLock))
	}()
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version int PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return 0, fmt.Errorf("migrate the state database: %w", err)
	}
	var current int
	if err := conn.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
		return 0, fmt.Errorf("migrate the state database: %w", err)
	}
	applied := 0
	for i, sql := range migrations() {
		version := i + 1
		if version <= current {
			continue
		}
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, sql); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version) VALUES ($1)`, version)
			return err
		})
		if err != nil {
			return applied, fmt.Errorf("apply migration %d: %w", version, err)
		}
		applied++
	}
	return applied, nil
}
