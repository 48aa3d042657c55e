package localpg

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/restore-drill/restore-drill/drill"
)

// Restore restores backup b onto target with pg_restore -j, which must be a
// drill's scratch database that does not serve its app. pg_restore carries
// on after errors and exits 1: any error is a failed restore, with the
// errors in the message.
func (p *Provider) Restore(ctx context.Context, b drill.Backup, target drill.Database, progress drill.ProgressFunc) (drill.RestoreResult, error) {
	var res drill.RestoreResult
	var name, app string
	if err := p.withAdmin(ctx, func(conn *pgx.Conn) error {
		d, err := p.lookupByID(ctx, conn, target)
		if err != nil {
			return err
		}
		t, ok := parseTag(d.comment)
		if !ok || t.drillID != target.DrillID || d.name == t.app {
			return drill.Errorf(drill.EREFUSED, "refusing to restore onto %q: only a scratch database the drill created may be restored onto", d.name)
		}
		name, app = d.name, t.app
		return nil
	}); err != nil {
		return res, err
	}
	file := p.dumpPath(app, b.Num)
	items, err := p.readable(ctx, b, file)
	if err != nil {
		return res, err
	}
	return p.pgRestore(ctx, b, name, file, items, progress)
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

// pgRestore restores file into the database called name with pg_restore -j.
// Any error pg_restore reports fails the restore.
func (p *Provider) pgRestore(ctx context.Context, b drill.Backup, name, file string, total int, progress drill.ProgressFunc) (drill.RestoreResult, error) {
	var res drill.RestoreResult
	// With -j, pg_restore prints "finished item N TABLE DATA schema name";
	// without, "processing data for table". Count each table once.
	done := map[string]bool{}
	counted := 0 // pg_restore's own count: "errors ignored on restore: N"
	onLine := func(line string) {
		switch {
		case strings.Contains(line, "errors ignored on restore:"):
			counted, _ = strconv.Atoi(strings.TrimSpace(line[strings.LastIndex(line, ":")+1:]))
			return
		case strings.Contains(line, "warning:"):
			res.Warnings = append(res.Warnings, line)
			return
		case progress == nil:
		case strings.Contains(line, "finished item") && strings.Contains(line, " TABLE DATA "):
			done[line[strings.Index(line, " TABLE DATA ")+len(" TABLE DATA "):]] = true
		case strings.Contains(line, "processing data for table"):
			done[line[strings.Index(line, "processing data for table")+len("processing data for table"):]] = true
		default:
			return
		}
		if progress != nil && len(done) > 0 {
			n := min(len(done), total)
			progress(drill.Progress{Message: fmt.Sprintf("restored %d of %d tables' data (%d%%)", n, total, 100*n/max(total, 1))})
		}
	}
	args := []string{"--jobs=" + fmt.Sprint(p.cfg.Jobs), "--verbose", "--dbname=" + name}
	if !drill.IsEmergency(ctx) {
		// A drill's scratch database needs no owners or grants; an
		// emergency restore's database becomes production on this same
		// server, where its roles exist and must own and reach their data.
		args = append(args, "--no-owner", "--no-acl")
	}
	_, err := p.runTool(ctx, p.cfg.PgRestore, onLine, append(args, file)...)
	if err != nil {
		if ctx.Err() != nil {
			return res, err
		}
		// Count as pg_restore does; without its summary (it stopped on a
		// fatal error), count its error lines.
		n := counted
		var te *toolError
		if n == 0 && errors.As(err, &te) {
			n = len(te.errors)
		}
		return res, drill.Wrap(drill.EFAILED, err, "pg_restore reported %s restoring %s onto %s, so it is a failed restore: %s", drill.Plural(max(n, 1), "error", "errors"), b.ID, name, toolMessage(err))
	}
	return res, nil
}
