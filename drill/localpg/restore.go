package localpg

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

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
// Any error pg_restore reports fails the restore. Progress is the bytes of
// the dump pg_restore and its workers have read, against the dump's size,
// with the tables whose data is done.
func (p *Provider) pgRestore(ctx context.Context, b drill.Backup, name, file string, total int, progress drill.ProgressFunc) (drill.RestoreResult, error) {
	var res drill.RestoreResult
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
	counted := 0 // pg_restore's own count: "errors ignored on restore: N"
	onLine := func(line string) {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case strings.Contains(line, "errors ignored on restore:"):
			counted, _ = strconv.Atoi(strings.TrimSpace(line[strings.LastIndex(line, ":")+1:]))
			return
		case strings.Contains(line, "warning:"):
			res.Warnings = append(res.Warnings, line)
			return
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
	args := []string{"--jobs=" + fmt.Sprint(p.cfg.Jobs), "--verbose", "--dbname=" + name}
	if !drill.IsEmergency(ctx) {
		// A drill's scratch database needs no owners or grants; an
		// emergency restore's database becomes production on this same
		// server, where its roles exist and must own and reach their data.
		args = append(args, "--no-owner", "--no-acl")
	}
	_, err := p.runToolWatched(ctx, p.cfg.PgRestore, onLine, watch, append(args, file)...)
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
