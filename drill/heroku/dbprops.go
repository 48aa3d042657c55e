package heroku

import (
	"context"
	"fmt"
	"slices"
	"strings"

	heroku "github.com/heroku/heroku-go/v6"
	"github.com/jackc/pgx/v5"

	"github.com/restore-drill/restore-drill/drill"
	"github.com/restore-drill/restore-drill/drill/pgsum"
)

// Heroku restores a backup without --create, so the database's own
// settings (ALTER DATABASE … SET: search_path, statement_timeout…) and its
// comment, which the dump holds, are lost on a new database
// (reference/postgres.md). The drill copies them from the database the
// backup was taken from, as its owner, and checks that they arrived: an app
// whose search_path is a database setting breaks on a restore without it.
// Grants are not copied: every Heroku database has its own roles.

// dbProps returns the sorted settings (for every role) and comment of the
// database conn is on: the lines of pgsum.DatabaseProps that a Heroku
// database's owner can set.
func dbProps(ctx context.Context, conn *pgx.Conn) ([]string, error) {
	all, err := pgsum.DatabaseProps(ctx, conn, 0)
	return slices.DeleteFunc(all, func(l string) bool {
		return !strings.HasPrefix(l, "comment ") && (!strings.HasPrefix(l, "setting ") || strings.HasPrefix(l, "setting for role "))
	}), err
}

// carryProps copies the database settings and comment of app's production
// database onto target, a database the drill restored (atts: its
// attachments, as just read), and checks them. One read of the config vars
// serves both when target is attached to app.
func (p *Provider) carryProps(ctx context.Context, app string, target drill.Database, atts []heroku.AddOnAttachment) error {
	att, err := urlAttachment(atts, target)
	if err != nil {
		return err
	}
	vars, err := p.configVars(ctx, app)
	if err != nil {
		return err
	}
	srcCfg, err := p.parseURL(vars, app, "DATABASE_URL", app+"'s database")
	if err != nil {
		return err
	}
	if att.App.Name != app {
		if vars, err = p.configVars(ctx, att.App.Name); err != nil {
			return err
		}
	}
	dstCfg, err := p.parseURL(vars, att.App.Name, att.Name+"_URL", target.Name)
	if err != nil {
		return err
	}
	src, err := p.connect(ctx, srcCfg, app+"'s database")
	if err != nil {
		return err
	}
	defer src.Close(context.WithoutCancel(ctx))
	want, err := dbProps(ctx, src)
	if err != nil {
		return p.interpretPG(err, app+"'s database")
	}
	dst, err := p.connect(ctx, dstCfg, target.Name)
	if err != nil {
		return err
	}
	defer dst.Close(context.WithoutCancel(ctx))
	var name string
	if err := dst.QueryRow(ctx, `SELECT pg_catalog.current_database()`).Scan(&name); err != nil {
		return p.interpretPG(err, target.Name)
	}
	db := pgx.Identifier{name}.Sanitize()
	for _, line := range want {
		if err := applyProp(ctx, dst, db, line); err != nil {
			return drill.Wrap(drill.EFAILED, err, "cannot give the restored database %s the source's %s: %s", target.Name, drill.Clip(line, 119), p.redactor.Redact(err.Error()))
		}
	}
	got, err := dbProps(ctx, dst)
	if err != nil {
		return p.interpretPG(err, target.Name)
	}
	if missing, _ := pgsum.DiffProps(want, got); len(missing) > 0 {
		for i, l := range missing {
			missing[i] = drill.Clip(l, 119)
		}
		return drill.Errorf(drill.EFAILED, "the restored database %s lacks what %s's database has: %s", target.Name, app, strings.Join(missing, "; "))
	}
	return nil
}

// applyProp sets one property line on the database db (quoted) of conn. A
// setting's value is stored as the setting's own text form, so it is set
// with set_config in a transaction and stored FROM CURRENT: lists such as
// search_path keep their elements.
func applyProp(ctx context.Context, conn *pgx.Conn, db, line string) error {
	if c, ok := strings.CutPrefix(line, "comment "); ok {
		_, err := conn.Exec(ctx, "COMMENT ON DATABASE "+db+" IS '"+strings.ReplaceAll(c, "'", "''")+"'")
		return err
	}
	kv, _ := strings.CutPrefix(line, "setting ")
	name, value, ok := strings.Cut(kv, "=")
	if !ok {
		return fmt.Errorf("setting %q has no value", kv)
	}
	ident := pgx.Identifier(strings.Split(name, ".")).Sanitize()
	tx, err := conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if _, err := tx.Exec(ctx, `SELECT pg_catalog.set_config($1, $2, true)`, name, value); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, "ALTER DATABASE "+db+" SET "+ident+" FROM CURRENT"); err != nil {
		return err
	}
	return tx.Commit(ctx)
}
