package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/restore-drill/restore-drill/drill"
	"github.com/restore-drill/restore-drill/drill/pgstate"
)

// stateDatabase is the state database's name on the local server when
// DATABASE_URL is not set.
const stateDatabase = "restore_drill"

// openState opens the state database: DATABASE_URL, or a restore_drill
// database on the local server, created on first use. It applies the
// migrations. The caller closes the pool.
func openState(ctx context.Context, cfg Config, redactor *drill.Redactor) (*pgstate.Store, func(), error) {
	url := cfg.DatabaseURL
	var pcfg *pgxpool.Config
	var err error
	if url != "" {
		if pcfg, err = pgxpool.ParseConfig(url); err != nil {
			return nil, nil, drill.Errorf(drill.ECONFIG, "DATABASE_URL is not a valid Postgres URL: %s", redactor.Redact(err.Error()))
		}
	} else {
		if pcfg, err = pgxpool.ParseConfig(cfg.LocalPostgresURL); err != nil {
			return nil, nil, drill.Errorf(drill.ECONFIG, "LOCAL_POSTGRES_URL is not a valid Postgres URL or connection string: %s", redactor.Redact(err.Error()))
		}
		if err := ensureDatabase(ctx, pcfg.ConnConfig, stateDatabase); err != nil {
			cause := errors.New(redactor.Redact(err.Error()))
			var connErr *pgconn.ConnectError
			if errors.As(err, &connErr) {
				return nil, nil, drill.Wrap(drill.ECONFIG, cause, "cannot reach the Postgres server at %s, which holds the state database %s: start it, or set LOCAL_POSTGRES_URL or DATABASE_URL", serverAddr(pcfg.ConnConfig), stateDatabase)
			}
			return nil, nil, drill.Wrap(drill.ECONFIG, cause, "cannot open the state database %s on the local server: set DATABASE_URL, or check LOCAL_POSTGRES_URL", stateDatabase)
		}
		pcfg.ConnConfig.Database = stateDatabase
	}
	redactor.AddSecret(pcfg.ConnConfig.Password)
	pcfg.ConnConfig.RuntimeParams["application_name"] = "restore-drill-state"
	// Each running drill holds a connection for its locks, and the bot's
	// job queue one to listen on.
	pcfg.MaxConns = 16
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err == nil {
		_, err = pgstate.Migrate(ctx, pool)
	}
	if err != nil {
		if pool != nil {
			pool.Close()
		}
		return nil, nil, drill.Wrap(drill.ECONFIG, errors.New(redactor.Redact(err.Error())), "cannot open the state database (DATABASE_URL, or %s on the local server)", stateDatabase)
	}
	return pgstate.New(pool), pool.Close, nil
}

func serverAddr(c *pgx.ConnConfig) string {
	if strings.HasPrefix(c.Host, "/") {
		return fmt.Sprintf("socket %s/.s.PGSQL.%d", c.Host, c.Port)
	}
	return fmt.Sprintf("%s:%d", c.Host, c.Port)
}

// ensureDatabase creates name on the server cfg points at if it is missing.
func ensureDatabase(ctx context.Context, cfg *pgx.ConnConfig, name string) error {
	admin := cfg.Copy()
	if admin.Database == "" {
		admin.Database = "postgres"
	}
	conn, err := pgx.ConnectConfig(ctx, admin)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil || exists {
		return err
	}
	_, err = conn.Exec(ctx, `CREATE DATABASE `+pgx.Identifier{name}.Sanitize())
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && (pgErr.Code == "42P04" || pgErr.Code == "23505") {
		return nil // another process created it first
	}
	return err
}

// resumeAbandoned undoes the drills dead processes left on this provider
// and says what it did on w. It runs before every drill and restore, and as
// the resume command.
func resumeAbandoned(ctx context.Context, p drill.Provider, store *pgstate.Store, w io.Writer, logger *slog.Logger, redactor *drill.Redactor) ([]*drill.Report, error) {
	r := &drill.Runner{Provider: p, Sink: newPrinter(w), Logger: logger, Redactor: redactor}
	reps, err := r.Resume(ctx, store)
	for _, rep := range reps {
		state := "undone"
		if len(rep.UndoFailed) > 0 {
			state = "UNDO FAILED for " + strings.Join(rep.UndoFailed, ", ") + ": act by hand"
		}
		fmt.Fprintf(w, "resumed drill %s of %s left by a dead process: %s (undone: %s)\n", rep.DrillID, rep.App, state, strings.Join(rep.Undone, ", "))
	}
	return reps, err
}

// openJournal opens the state database for a drill or restore and first
// finishes whatever dead processes left unfinished on this provider.
func openJournal(ctx context.Context, cfg Config, p drill.Provider, tio IO, logger *slog.Logger, redactor *drill.Redactor) (*pgstate.Store, func(), error) {
	store, closeState, err := openState(ctx, cfg, redactor)
	if err != nil {
		return nil, nil, err
	}
	if _, err := resumeAbandoned(ctx, p, store, tio.Err, logger, redactor); err != nil {
		closeState()
		return nil, nil, err
	}
	return store, closeState, nil
}
