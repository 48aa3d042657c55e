package localpg

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/restore-drill/restore-drill/drill"
)

var _ drill.EmergencyProvider = (*Provider)(nil)

// RestoreProduction replaces the contents of the app's database with backup
// b, in place: every schema outside the system ones is dropped and the dump
// restored with pg_restore -j. The database must be in maintenance, and
// proof must be the typed "APP BACKUPID"; anything else is refused before a
// byte changes.
func (p *Provider) RestoreProduction(ctx context.Context, app string, b drill.Backup, proof drill.Confirmation, progress drill.ProgressFunc) (drill.RestoreResult, error) {
	var res drill.RestoreResult
	if want := drill.ProductionProof(app, b.ID); strings.TrimSpace(proof.Typed) != want || proof.User == "" {
		return res, drill.Errorf(drill.EREFUSED, "refusing to restore onto %s in place: it needs a confirmation typed as %q by a named person", app, want)
	}
	file := p.dumpPath(app, b.Num)
	items, err := p.readable(ctx, b, file)
	if err != nil {
		return res, err
	}
	err = p.withAdmin(ctx, func(admin *pgx.Conn) error {
		d, err := p.lookupByName(ctx, admin, app)
		if err != nil {
			return err
		}
		if d.connLimit != 0 {
			return drill.Errorf(drill.EREFUSED, "refusing to restore onto %s in place while it is not in maintenance", app)
		}
		return p.endSessions(ctx, admin, app, false)
	})
	if err != nil {
		return res, err
	}
	conn, err := p.connect(ctx, app)
	if err != nil {
		return res, err
	}
	// The restore's own check of the code loading runs (restrictedLoad)
	// must not refuse it half-way, with production dropped: run it first,
	// for this backup and for the rollback to the current data, while
	// nothing has changed.
	if err := p.checkInPlace(ctx, conn, b, app, file); err != nil {
		conn.Close(context.WithoutCancel(ctx))
		return res, err
	}
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error { return clearDatabase(ctx, tx) })
	conn.Close(context.WithoutCancel(ctx))
	if err != nil {
		return res, p.interpret(err, app)
	}
	// Production has changed from here on: no error may read as a refusal
	// (which means nothing changed, so nothing to roll back).
	res, err = p.pgRestore(ctx, b, app, file, items, progress)
	if drill.ErrorCode(err) == drill.EREFUSED {
		err = drill.Wrap(drill.EFAILED, err, "the restore of %s onto %s stopped half-way", b.ID, app)
	}
	return res, err
}

// Adopt removes the drill's tag from db, which now serves app, so no drill
// will ever destroy it; its setting restore_drill.restored records where it
// came from (its comment is the app's, carried over by the restore).
func (p *Provider) Adopt(ctx context.Context, app string, db drill.Database) (drill.Database, error) {
	var out drill.Database
	err := p.withAdmin(ctx, func(conn *pgx.Conn) error {
		d, err := p.lookupByID(ctx, conn, db)
		if err != nil {
			return err
		}
		if d.name != app {
			return drill.Errorf(drill.EREFUSED, "refusing to adopt %q: it does not serve %s", d.name, app)
		}
		note := fmt.Sprintf("restored by restore-drill (drill %s) on %s", db.DrillID, p.cfg.Now().UTC().Format("2006-01-02 15:04 UTC"))
		if _, err := conn.Exec(ctx, fmt.Sprintf(`ALTER DATABASE %[1]s SET restore_drill.restored = %[2]s; ALTER DATABASE %[1]s RESET %[3]s`,
			ident(d.name), quoteLiteral(note), tagSetting)); err != nil {
			return p.interpret(err, d.name)
		}
		d.tag = ""
		out = d.ref()
		return nil
	})
	return out, err
}

// Lookup returns db under its current name.
func (p *Provider) Lookup(ctx context.Context, db drill.Database) (drill.Database, error) {
	var out drill.Database
	err := p.withAdmin(ctx, func(conn *pgx.Conn) error {
		d, err := p.lookupByID(ctx, conn, db)
		out = d.ref()
		return err
	})
	return out, err
}

// RemoveHint says how to drop a database kept for forensics.
func (p *Provider) RemoveHint(app string, db drill.Database) string {
	return fmt.Sprintf("when it is no longer needed: dropdb %s", db.Name)
}

// clearDatabase drops, in tx, everything a restore in place replaces: every
// schema outside the system ones, large objects, publications and event
// triggers; then makes an empty public schema, as a new database has.
func clearDatabase(ctx context.Context, tx pgx.Tx) error {
	rows, err := tx.Query(ctx, `SELECT nspname FROM pg_namespace
		WHERE nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
		  AND nspname NOT LIKE 'pg\_temp\_%' AND nspname NOT LIKE 'pg\_toast\_temp\_%'`)
	if err != nil {
		return err
	}
	schemas, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	for _, s := range schemas {
		if _, err := tx.Exec(ctx, `DROP SCHEMA `+ident(s)+` CASCADE`); err != nil {
			return err
		}
	}
	// What lives outside schemas goes too, or the restore collides with
	// it: large objects, publications, event triggers.
	_, err = tx.Exec(ctx, `
		SELECT lo_unlink(oid) FROM pg_largeobject_metadata;
		DO $$ DECLARE n text; BEGIN
			FOR n IN SELECT pubname FROM pg_publication LOOP EXECUTE format('DROP PUBLICATION %I', n); END LOOP;
			FOR n IN SELECT evtname FROM pg_event_trigger LOOP EXECUTE format('DROP EVENT TRIGGER %I', n); END LOOP;
		END $$;
		CREATE SCHEMA public AUTHORIZATION pg_database_owner;
		GRANT USAGE ON SCHEMA public TO PUBLIC`)
	return err
}

// checkInPlace refuses, before anything changes, a restore in place of
// backup b onto app (conn) that the restore's own check would refuse
// half-way: the backup's definitions are loaded in a transaction that is
// rolled back, after production's are dropped in it, and the code loading
// rows would run is looked for there; and production's current definitions
// (what the rollback to the safety backup restores) are checked as they
// are. Production is in maintenance, its sessions ended.
func (p *Provider) checkInPlace(ctx context.Context, conn *pgx.Conn, b drill.Backup, app, file string) error {
	refuse := func(whose, list string) error {
		return p.loadRefusal(fmt.Sprintf("refusing to restore %s onto %s in place, before changing anything: loading %s rows", b.ID, app, whose), list, "restore by hand as their owner")
	}
	if list, err := p.loadCalls(ctx, conn, app); err != nil {
		return err
	} else if list != "" {
		return refuse("the current data's (so the rollback to the safety backup could not run)", list)
	}
	script, err := p.runTool(ctx, p.cfg.PgRestore, nil, "--section=pre-data", "--file=-", file)
	if err != nil {
		if ctx.Err() != nil {
			return err
		}
		return drill.Wrap(drill.EFAILED, err, "backup %s cannot be read: %s", b.ID, toolMessage(err))
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		return p.interpret(err, app)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if err := clearDatabase(ctx, tx); err != nil {
		return p.interpret(err, app)
	}
	if _, err := tx.Exec(ctx, sqlOnly(string(script))); err != nil {
		return drill.Wrap(drill.EFAILED, err, "the definitions of backup %s do not load onto %s, so restoring it in place would fail; nothing was changed: %s", b.ID, app, p.interpret(err, app))
	}
	if list, err := p.loadCalls(ctx, tx, app); err != nil {
		return err
	} else if list != "" {
		return refuse("the backup's", list)
	}
	return nil
}

// sqlOnly drops psql's meta-commands (\restrict and the like, which newer
// pg_restore versions write) from a script pg_restore wrote.
func sqlOnly(script string) string {
	lines := strings.Split(script, "\n")
	out := lines[:0]
	for _, l := range lines {
		if !strings.HasPrefix(l, "\\") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
