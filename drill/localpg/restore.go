package localpg

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/restore-drill/restore-drill/drill"
)

// Restore restores backup b onto target with pg_restore -j, which must be a
// drill's scratch database that does not serve its app. pg_restore carries
// on after errors and exits 1: any error is a failed restore, with the
// errors in the message.
func (p *Provider) Restore(ctx context.Context, b drill.Backup, target drill.Database, progress drill.ProgressFunc) (drill.RestoreResult, error) {
	var res drill.RestoreResult
	var name, app string
	var oid uint32
	if err := p.withAdmin(ctx, func(conn *pgx.Conn) error {
		d, err := p.lookupByID(ctx, conn, target)
		if err != nil {
			return err
		}
		t, ok := parseTag(d.tag)
		if !ok || t.drillID != target.DrillID || d.name == t.app {
			return drill.Errorf(drill.EREFUSED, "refusing to restore onto %q: only a scratch database the drill created may be restored onto", d.name)
		}
		name, app, oid = d.name, t.app, d.oid
		return nil
	}); err != nil {
		return res, err
	}
	file := p.dumpPath(app, b.Num)
	items, err := p.readable(ctx, b, file)
	if err != nil {
		return res, err
	}
	source := p.sourceMeta(app, b.Num)
	if source.NoPublicSchema {
		if err := p.dropPublic(ctx, name); err != nil {
			return res, err
		}
	}
	res, err = p.pgRestore(ctx, b, name, file, items, progress)
	if err != nil {
		return res, err
	}
	return res, p.carryProps(ctx, b, file, name, oid, source.DatabaseProps)
}

// sourceMeta returns what backup num's metadata says about its source; the
// zero meta when it cannot be read.
func (p *Provider) sourceMeta(app string, num int) meta {
	var m meta
	if data, err := os.ReadFile(p.metaPath(app, num)); err == nil {
		_ = json.Unmarshal(data, &m)
	}
	return m
}

// lacksPublic reports whether the database called name has no schema
// public.
func (p *Provider) lacksPublic(ctx context.Context, name string) (bool, error) {
	conn, err := p.connect(ctx, name)
	if err != nil {
		return false, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var none bool
	err = conn.QueryRow(ctx, `SELECT pg_catalog.to_regnamespace('public') IS NULL`).Scan(&none)
	return none, p.interpret(err, name)
}

// dropPublic drops the empty public schema a new database is made with,
// when the source had none: the restore must not show a schema the source
// lacked.
func (p *Provider) dropPublic(ctx context.Context, name string) error {
	conn, err := p.connect(ctx, name)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	_, err = conn.Exec(ctx, `DROP SCHEMA IF EXISTS public RESTRICT`)
	return p.interpret(err, name)
}

// readable checks that backup b's dump exists and that pg_restore can read
// its table of contents; it returns the number of tables with data.
func (p *Provider) readable(ctx context.Context, b drill.Backup, file string) (int, error) {
	if _, err := os.Stat(file); errors.Is(err, fs.ErrNotExist) {
		return 0, drill.Errorf(drill.ENOTFOUND, "the dump of backup %s is missing: %s", b.ID, file)
	}
	list, err := p.runTool(ctx, p.cfg.PgRestore, nil, "--list", file)
	if err != nil {
		if ctx.Err() != nil {
			return 0, err
		}
		return 0, drill.Wrap(drill.EFAILED, err, "backup %s cannot be read, it is corrupt or truncated: %s", b.ID, toolMessage(err))
	}
	return strings.Count(string(list), " TABLE DATA "), nil
}

// pgRestore restores file into the database called name. Drills and
// emergency restores take this one path with the same options, so a drill
// predicts what an incident restore will do (a role missing since the
// backup fails both).
//
// Owners and grants are restored: on this server the app's roles exist and
// must own and reach their data, and PostgreSQL then runs index and
// materialized view expressions as their owners, in a security-restricted
// operation (reference/postgres.md, "Who runs the owner's code"). What
// would run as the restoring role is checked first (restrictedLoad): the
// definitions go in (no code runs), then, before a row is loaded, the
// restore is refused if loading would call functions of another,
// unprivileged role. Any error pg_restore reports fails the restore.
//
// Progress is the bytes of the dump pg_restore and its workers have read,
// against the dump's size, with the tables whose data is done.
func (p *Provider) pgRestore(ctx context.Context, b drill.Backup, name, file string, total int, progress drill.ProgressFunc) (drill.RestoreResult, error) {
	var res drill.RestoreResult
	if err := p.runRestore(ctx, b, name, file, &res, nil, nil, "--section=pre-data"); err != nil {
		return res, err
	}
	if err := p.restrictedLoad(ctx, b, name); err != nil {
		return res, err
	}
	var size int64
	if fi, err := os.Stat(file); err == nil {
		size = fi.Size()
	}
	var mu sync.Mutex // onLine and watch both report
	var read int64
	// With -j, pg_restore prints "finished item N TABLE DATA schema name";
	// without, "processing data for table". Count each table once.
	done := map[string]bool{}
	report := func() {
		n := min(len(done), total)
		pr := drill.Progress{Message: fmt.Sprintf("restored %d of %d tables' data (%d%%)", n, total, 100*n/max(total, 1))}
		if read > 0 && size > 0 {
			pr.Bytes, pr.Total = min(read, size), size
			pr.Message = fmt.Sprintf("read %s of the %s dump; %d of %d tables' data restored", drill.HumanBytes(pr.Bytes), drill.HumanBytes(size), n, total)
		}
		progress(pr)
	}
	onLine := func(line string) {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case progress == nil:
			return
		case strings.Contains(line, "finished item") && strings.Contains(line, " TABLE DATA "):
			done[line[strings.Index(line, " TABLE DATA ")+len(" TABLE DATA "):]] = true
		case strings.Contains(line, "processing data for table"):
			done[line[strings.Index(line, "processing data for table")+len("processing data for table"):]] = true
		default:
			return
		}
		report()
	}
	var watch func(context.Context, int)
	if progress != nil {
		watch = func(ctx context.Context, pid int) {
			tick := time.NewTicker(p.cfg.ProgressInterval)
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				if n, ok := bytesRead(pid); ok {
					mu.Lock()
					if n > read {
						read = n
						report()
					}
					mu.Unlock()
				}
			}
		}
	}
	err := p.runRestore(ctx, b, name, file, &res, onLine, watch, "--section=data", "--section=post-data", "--jobs="+fmt.Sprint(p.cfg.Jobs))
	return res, err
}

// runRestore runs one pg_restore of file into name with args, collecting
// its warnings into res; watch, when set, runs beside it with its pid. Any
// error it reports fails the restore, counted as pg_restore counts them.
func (p *Provider) runRestore(ctx context.Context, b drill.Backup, name, file string, res *drill.RestoreResult, onLine func(string), watch func(context.Context, int), args ...string) error {
	// each runs on this goroutine (runToolWatched reads stderr here), so
	// counted and res need no lock.
	counted := 0 // pg_restore's own count: "errors ignored on restore: N"
	each := func(line string) {
		switch {
		case strings.Contains(line, "errors ignored on restore:"):
			counted, _ = strconv.Atoi(strings.TrimSpace(line[strings.LastIndex(line, ":")+1:]))
			return
		case strings.Contains(line, "warning:"):
			res.Warnings = append(res.Warnings, line)
			return
		}
		if onLine != nil {
			onLine(line)
		}
	}
	args = append(args, "--verbose", "--dbname="+name, file)
	_, err := p.runToolWatched(ctx, p.cfg.PgRestore, each, watch, args...)
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return err
	}
	// Count as pg_restore does; without its summary (it stopped on a fatal
	// error), count its error lines.
	n := counted
	var te *toolError
	if n == 0 && errors.As(err, &te) {
		n = len(te.errors)
	}
	return drill.Wrap(drill.EFAILED, err, "pg_restore reported %s restoring %s onto %s, so it is a failed restore: %s", drill.Plural(max(n, 1), "error", "errors"), b.ID, name, toolMessage(err))
}

// loadCode lists, in the database being restored, the code PostgreSQL runs
// as the restoring role while it loads rows (COPY): CHECK constraints of
// tables and domains, generated columns and partition keys, with the
// functions they call (directly or through operators) that belong to
// neither a superuser nor the restoring role. A SECURITY DEFINER function
// runs as its owner, who cannot leave that role inside it, so it is safe.
// Index and materialized view expressions are not here: they run as their
// table's owner.
const loadCode = `
WITH code AS (
	SELECT pg_catalog.format('CHECK constraint %I on %s', k.conname,
		CASE WHEN k.conrelid <> 0 THEN k.conrelid::pg_catalog.regclass::pg_catalog.text ELSE 'domain ' || k.contypid::pg_catalog.regtype::pg_catalog.text END) AS what,
		d.refclassid, d.refobjid
	FROM pg_catalog.pg_constraint k
	JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_constraint'::pg_catalog.regclass AND d.objid = k.oid
	WHERE k.contype = 'c'
	UNION ALL
	SELECT pg_catalog.format('generated column %I of %s', a.attname, a.attrelid::pg_catalog.regclass), d.refclassid, d.refobjid
	FROM pg_catalog.pg_attrdef ad
	JOIN pg_catalog.pg_attribute a ON a.attrelid = ad.adrelid AND a.attnum = ad.adnum AND a.attgenerated <> ''
	JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_attrdef'::pg_catalog.regclass AND d.objid = ad.oid
	UNION ALL
	SELECT pg_catalog.format('partition key of %s', pt.partrelid::pg_catalog.regclass), d.refclassid, d.refobjid
	FROM pg_catalog.pg_partitioned_table pt
	JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objid = pt.partrelid
), called AS (
	SELECT what, CASE d.refclassid
		WHEN 'pg_catalog.pg_proc'::pg_catalog.regclass THEN d.refobjid
		WHEN 'pg_catalog.pg_operator'::pg_catalog.regclass THEN (SELECT o.oprcode::pg_catalog.oid FROM pg_catalog.pg_operator o WHERE o.oid = d.refobjid)
	END AS fn
	FROM code d
)
SELECT DISTINCT c.what, f.oid::pg_catalog.regprocedure::pg_catalog.text, pg_catalog.pg_get_userbyid(f.proowner)
FROM called c
JOIN pg_catalog.pg_proc f ON f.oid = c.fn
JOIN pg_catalog.pg_roles r ON r.oid = f.proowner
WHERE NOT r.rolsuper AND r.rolname <> current_user AND NOT f.prosecdef
ORDER BY 1, 2`

// restrictedLoad refuses to load rows into name when loading would run
// functions of another, unprivileged role (loadCode) with the restoring
// role's privileges: a drill run as a superuser would otherwise hand that
// role the server. SET ROLE cannot contain it (the function can RESET
// ROLE), so the restore stops before a row is loaded.
func (p *Provider) restrictedLoad(ctx context.Context, b drill.Backup, name string) error {
	conn, err := p.connect(ctx, name)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	list, err := p.loadCalls(ctx, conn, name)
	if err != nil || len(list) == 0 {
		return err
	}
	return p.loadRefusal("refusing to load the rows of "+b.ID+": loading them", list, "restore this backup by hand as their owner")
}

// loadRefusal is the refusal of a load that would run list (loadCalls)
// with the restoring role's privileges: what would do it, then how to go on.
func (p *Provider) loadRefusal(what, list, byHand string) error {
	return drill.Errorf(drill.EREFUSED, "%s would run functions another role controls with the restoring role %q's privileges: %s. Review those functions and make a superuser own them (ALTER FUNCTION … OWNER TO), or %s",
		what, p.cfg.Server.User, list, byHand)
}

// querier is a connection or a transaction.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// loadCalls lists, in words, the calls loadCode finds in the database q is
// on ("" when none), at most five named.
func (p *Provider) loadCalls(ctx context.Context, q querier, name string) (string, error) {
	// Only pg_catalog resolves names, whatever the database's settings.
	if _, err := q.Exec(ctx, `SET search_path = ''`); err != nil {
		return "", p.interpret(err, name)
	}
	rows, err := q.Query(ctx, loadCode)
	if err != nil {
		return "", p.interpret(err, name)
	}
	type call struct{ what, fn, owner string }
	calls, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (call, error) {
		var c call
		return c, r.Scan(&c.what, &c.fn, &c.owner)
	})
	if err != nil {
		return "", p.interpret(err, name)
	}
	var list []string
	for _, c := range calls {
		list = append(list, fmt.Sprintf("%s calls %s of role %s", c.what, c.fn, c.owner))
	}
	more := ""
	if len(list) > 5 {
		list, more = list[:5], fmt.Sprintf(" (and %d more)", len(list)-5)
	}
	return strings.Join(list, "; ") + more, nil
}
