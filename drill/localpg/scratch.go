package localpg

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/restore-drill/restore-drill/drill"
)

// A scratch database carries its tag in its setting restore_drill.scratch
// (ALTER DATABASE … SET): "restore-drill scratch drill=<id> app=<app>". Only
// databases with a tag may be dropped, and never while they serve the app.
// The tag is not the comment, which a restore carries over from the app's
// database like its other properties.
const tagPrefix = "restore-drill scratch "

// tagSetting is the database setting that holds a scratch database's tag.
const tagSetting = "restore_drill.scratch"

// tagColumn reads the tag of pg_database d, "" when it has none.
const tagColumn = `coalesce((SELECT pg_catalog.substr(c, pg_catalog.length('` + tagSetting + `=') + 1)
	FROM pg_catalog.pg_db_role_setting s, pg_catalog.unnest(s.setconfig) c
	WHERE s.setdatabase = d.oid AND s.setrole = 0 AND pg_catalog.starts_with(c, '` + tagSetting + `=')), '')`

// setTag is the statement that tags the database called name with t.
func setTag(name string, t tag) string {
	return fmt.Sprintf(`ALTER DATABASE %s SET %s = %s`, ident(name), tagSetting, quoteLiteral(t.String()))
}

type tag struct {
	drillID string
	app     string
}

func (t tag) String() string { return fmt.Sprintf("%sdrill=%s app=%s", tagPrefix, t.drillID, t.app) }

func parseTag(comment string) (tag, bool) {
	rest, ok := strings.CutPrefix(comment, tagPrefix)
	if !ok {
		return tag{}, false
	}
	var t tag
	for _, f := range strings.Fields(rest) {
		k, v, _ := strings.Cut(f, "=")
		switch k {
		case "drill":
			t.drillID = v
		case "app":
			t.app = v
		}
	}
	return t, drill.ValidDrillID(t.drillID) && t.app != ""
}

// scratchName is the name of drill id's scratch database for app.
func scratchName(app, drillID string) string {
	if name := app + "_drill_" + drillID; len(name) <= 63 {
		return name
	}
	return "drill_" + drillID
}

// parkedName is the name the original database carries while drill id's
// scratch database is promoted in its place.
func parkedName(app, drillID string) string {
	if name := app + "_orig_" + drillID; len(name) <= 63 {
		return name
	}
	return "orig_" + drillID
}

func ident(name string) string { return pgx.Identifier{name}.Sanitize() }

// CreateScratch creates an empty database for the drill with the source's
// encoding and locale, tagged with the drill id.
func (p *Provider) CreateScratch(ctx context.Context, app, drillID string, _ drill.ProgressFunc) (drill.Database, error) {
	if !drill.ValidDrillID(drillID) {
		return drill.Database{}, drill.Errorf(drill.EINVALID, "%q is not a drill id", drillID)
	}
	name := scratchName(app, drillID)
	var out drill.Database
	err := p.withAdmin(ctx, func(conn *pgx.Conn) error {
		src, err := p.lookupByName(ctx, conn, app)
		if err != nil {
			return err
		}
		sql := fmt.Sprintf(`CREATE DATABASE %s TEMPLATE template0 ENCODING %s LC_COLLATE %s LC_CTYPE %s`,
			ident(name), quoteLiteral(src.encoding), quoteLiteral(src.collate), quoteLiteral(src.ctype))
		if _, err := conn.Exec(ctx, sql); err != nil {
			return p.interpret(err, name)
		}
		// CREATE DATABASE cannot share a transaction with ALTER DATABASE;
		// if the tag cannot be written, drop the untagged database at once.
		if _, err := conn.Exec(ctx, setTag(name, tag{drillID: drillID, app: app})); err != nil {
			_, _ = conn.Exec(context.WithoutCancel(ctx), `DROP DATABASE IF EXISTS `+ident(name))
			return p.interpret(err, name)
		}
		d, err := p.lookupByName(ctx, conn, name)
		out = d.ref()
		return err
	})
	return out, err
}

// DestroyScratch drops db if, and only if, it carries drill db.DrillID's tag
// and does not serve its app. A database that is already gone is not an
// error.
func (p *Provider) DestroyScratch(ctx context.Context, db drill.Database) error {
	return p.withAdmin(ctx, func(conn *pgx.Conn) error {
		d, err := p.lookupByID(ctx, conn, db)
		if drill.ErrorCode(err) == drill.ENOTFOUND {
			return nil
		}
		if err != nil {
			return err
		}
		t, ok := parseTag(d.tag)
		if !ok || db.DrillID == "" || t.drillID != db.DrillID {
			return drill.Errorf(drill.EREFUSED, "refusing to drop database %q: it carries no tag of drill %s, so the drill did not create it", d.name, db.DrillID)
		}
		if d.name == t.app {
			return drill.Errorf(drill.EREFUSED, "refusing to drop database %q: it serves app %s now; promote the original back first", d.name, t.app)
		}
		if _, err := conn.Exec(ctx, `DROP DATABASE `+ident(d.name)+` WITH (FORCE)`); err != nil {
			return p.interpret(err, d.name)
		}
		return nil
	})
}

// SetMaintenance keeps everyone but superusers out of the app's database
// (CONNECTION LIMIT 0) and ends the sessions already there; off restores
// the limit it had before exactly. The previous limit is part of the
// provider's state (see StateKeeper), which the runner journals with the
// undo of maintenance on, so any process can restore it; it is also kept in
// the backup directory, for undo records journaled before the state was.
func (p *Provider) SetMaintenance(ctx context.Context, app string, on bool) error {
	state := maintenanceFile{path: p.appDir(app) + "/maintenance.json"}
	return p.withAdmin(ctx, func(conn *pgx.Conn) error {
		d, err := p.lookupByName(ctx, conn, app)
		if err != nil {
			return err
		}
		if !on {
			prev, ok := p.rememberedLimit(app)
			if !ok {
				if prev, ok, err = state.read(); err != nil {
					return err
				}
			}
			switch {
			case !ok:
				return nil // never put in maintenance by a drill: nothing to restore
			case d.connLimit != 0:
				return state.remove() // out of maintenance already: leave its limit alone
			}
			if _, err := conn.Exec(ctx, fmt.Sprintf(`ALTER DATABASE %s CONNECTION LIMIT %d`, ident(app), prev)); err != nil {
				return p.interpret(err, app)
			}
			return state.remove()
		}
		// Save the limit being replaced, unless maintenance is already on:
		// then a saved file (a drill that died) still holds the real limit,
		// and without one maintenance was on before any drill, so there is
		// nothing of ours to restore.
		if d.connLimit != 0 {
			p.rememberLimit(app, d.connLimit)
			if err := ensureDir(p.appDir(app)); err != nil {
				return err
			}
			if err := state.write(d.connLimit); err != nil {
				return err
			}
		}
		if _, err := conn.Exec(ctx, fmt.Sprintf(`ALTER DATABASE %s CONNECTION LIMIT 0`, ident(app))); err != nil {
			return p.interpret(err, app)
		}
		return p.endSessions(ctx, conn, d.name, false)
	})
}

// endSessions terminates the sessions connected to dbname. Unless all, the
// drill's own sessions are spared.
func (p *Provider) endSessions(ctx context.Context, conn *pgx.Conn, dbname string, all bool) error {
	sql := `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE datname = $1 AND pid <> pg_backend_pid()`
	if !all {
		sql += ` AND application_name NOT LIKE 'restore-drill%'`
	}
	var n int
	if err := conn.QueryRow(ctx, sql, dbname).Scan(&n); err != nil {
		return p.interpret(err, dbname)
	}
	return nil
}

// Promote makes db serve the app by swapping database names in one
// transaction, so the app's name always exists. db must be a scratch
// database of a drill on this app, or the app's original database parked by
// one; whatever served the app moves to its own drill name.
func (p *Provider) Promote(ctx context.Context, app string, db drill.Database) error {
	return p.withAdmin(ctx, func(conn *pgx.Conn) error {
		target, err := p.lookupByID(ctx, conn, db)
		if err != nil {
			return err
		}
		current, err := p.lookupByName(ctx, conn, app)
		if err != nil {
			return err
		}
		if current.oid == target.oid {
			return nil
		}
		targetTag, targetIsScratch := parseTag(target.tag)
		currentTag, currentIsScratch := parseTag(current.tag)
		var parkAs string
		switch {
		case targetIsScratch && targetTag.app == app && !currentIsScratch:
			parkAs = parkedName(app, targetTag.drillID)
		case !targetIsScratch && currentIsScratch && currentTag.app == app && target.name == parkedName(app, currentTag.drillID):
			parkAs = scratchName(app, currentTag.drillID)
		default:
			return drill.Errorf(drill.EREFUSED, "refusing to promote %q for %s: only a drill's scratch database, or the original it parked, may serve the app", target.name, app)
		}
		return p.swap(ctx, conn, current.name, parkAs, target.name, app)
	})
}

// swap renames from→fromTo and to→app in one transaction, ending the
// sessions that block renames (production is in maintenance when a drill
// promotes). It retries briefly while sessions reconnect.
func (p *Provider) swap(ctx context.Context, conn *pgx.Conn, from, fromTo, to, app string) error {
	var last error
	for attempt := 0; attempt < 10; attempt++ {
		for _, name := range []string{from, to} {
			if err := p.endSessions(ctx, conn, name, true); err != nil {
				return err
			}
		}
		last = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			// The connection limit belongs to a database, not its name: the
			// one taking over the app takes the app's limit too, so a
			// promote in maintenance keeps the app's users out.
			var limit int
			if err := tx.QueryRow(ctx, `SELECT datconnlimit FROM pg_database WHERE datname = $1`, from).Scan(&limit); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, fmt.Sprintf(`ALTER DATABASE %s RENAME TO %s`, ident(from), ident(fromTo))); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, fmt.Sprintf(`ALTER DATABASE %s RENAME TO %s`, ident(to), ident(app))); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, fmt.Sprintf(`ALTER DATABASE %s CONNECTION LIMIT %d`, ident(app), limit))
			return err
		})
		if last == nil {
			return nil
		}
		var pgErr *pgconn.PgError
		if !errors.As(last, &pgErr) || pgErr.Code != "55006" {
			break // only "in use by other sessions" is worth another try
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(attempt+1) * 50 * time.Millisecond):
		}
	}
	return p.interpret(last, from)
}

func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// FindScratch finds drill drillID's scratch database for app by its tag, or
// by its name when the process died between creating and tagging it (the
// journal proves the drill made it), tagging it then.
func (p *Provider) FindScratch(ctx context.Context, app, drillID string) (drill.Database, bool, error) {
	var out drill.Database
	var found bool
	err := p.withAdmin(ctx, func(conn *pgx.Conn) error {
		rows, err := conn.Query(ctx, `SELECT `+databaseColumns+` FROM pg_database d
			WHERE `+tagColumn+` = $1 OR d.datname = $2`,
			tag{drillID: drillID, app: app}.String(), scratchName(app, drillID))
		if err != nil {
			return p.interpret(err, app)
		}
		dbs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (database, error) { return scanDatabase(r) })
		if err != nil {
			return p.interpret(err, app)
		}
		for _, d := range dbs {
			if _, tagged := parseTag(d.tag); !tagged && d.name != app {
				t := tag{drillID: drillID, app: app}
				if _, err := conn.Exec(ctx, setTag(d.name, t)); err != nil {
					return p.interpret(err, d.name)
				}
				d.tag = t.String()
			}
			if t, ok := parseTag(d.tag); ok && t.drillID == drillID {
				out, found = d.ref(), true
			}
		}
		return nil
	})
	return out, found, err
}

// Quiesce ends the sessions a dead drill left on the server (its
// application_name names the drill) and waits until they are gone, so that
// a CREATE DATABASE or pg_restore still running cannot outlive the undo;
// then it finishes the records of the captures the drill left running.
func (p *Provider) Quiesce(ctx context.Context, drillID string) error {
	if err := p.endDrillSessions(ctx, drillID); err != nil {
		return err
	}
	return p.settleCaptures(drillID)
}

// endDrillSessions ends drill drillID's sessions and waits until they are
// gone.
func (p *Provider) endDrillSessions(ctx context.Context, drillID string) error {
	name := "restore-drill " + drillID
	return p.withAdmin(ctx, func(conn *pgx.Conn) error {
		for attempt := 0; ; attempt++ {
			var left int
			err := conn.QueryRow(ctx, `SELECT count(*) FILTER (WHERE NOT pg_terminate_backend(pid))
				+ count(*) FROM pg_stat_activity WHERE application_name = $1 AND pid <> pg_backend_pid()`, name).Scan(&left)
			if err != nil {
				return p.interpret(err, "")
			}
			if left == 0 {
				return nil
			}
			if attempt == 100 {
				return drill.Errorf(drill.EFAILED, "sessions of drill %s are still running after 10 s", drillID)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
	})
}
