package localpg

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/restore-drill/restore-drill/drill"
	"github.com/restore-drill/restore-drill/drill/pgsum"
)

// meta is a backup's metadata, kept beside its dump as bNNN.json.
type meta struct {
	ID         string             `json:"id"`
	Num        int                `json:"num"`
	App        string             `json:"app"`
	Status     drill.BackupStatus `json:"status"`
	CreatedAt  time.Time          `json:"created_at"`
	FinishedAt *time.Time         `json:"finished_at,omitempty"`
	SizeBytes  int64              `json:"size_bytes"`
	Source     string             `json:"source"`
	Error      string             `json:"error,omitempty"`
	// DrillID is the drill that took the backup, if any: a resume of that
	// drill finishes the record of a capture its dead process left running.
	DrillID string `json:"drill_id,omitempty"`
	// Fingerprint is the fingerprint of the snapshot the dump was taken
	// from, so any later restore of this backup is compared exactly.
	Fingerprint *drill.Fingerprint `json:"fingerprint,omitempty"`
	// DatabaseProps are the source database's own properties (owner,
	// comment, access, settings) when the dump was taken, so a restore
	// that does not carry them fails.
	DatabaseProps []string `json:"database_props,omitempty"`
	// NoPublicSchema says the source had no schema public. The dump cannot
	// say so (pg_dump never creates public), and a new database has one.
	NoPublicSchema bool `json:"no_public_schema,omitempty"`
}

func (m meta) backup() drill.Backup {
	return drill.Backup{ID: m.ID, Num: m.Num, Status: m.Status, CreatedAt: m.CreatedAt, FinishedAt: m.FinishedAt,
		SizeBytes: m.SizeBytes, Source: m.Source, Fingerprint: m.Fingerprint}
}

func (p *Provider) appDir(app string) string { return filepath.Join(p.cfg.BackupDir, app) }

func (p *Provider) metaPath(app string, num int) string {
	return filepath.Join(p.appDir(app), drill.FormatBackupID('b', num)+".json")
}

func (p *Provider) dumpPath(app string, num int) string {
	return filepath.Join(p.appDir(app), drill.FormatBackupID('b', num)+".dump")
}

func writeMeta(path string, m meta) error {
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return drill.Wrap(drill.EFAILED, err, "cannot write backup metadata %s", path)
	}
	if err := os.Rename(tmp, path); err != nil {
		return drill.Wrap(drill.EFAILED, err, "cannot write backup metadata %s", path)
	}
	return nil
}

// Backups lists the app's backups, oldest first. A plain server has no
// backup schedules.
func (p *Provider) Backups(ctx context.Context, app string) (drill.BackupList, error) {
	list := drill.BackupList{App: app}
	if err := p.withAdmin(ctx, func(conn *pgx.Conn) error {
		_, err := p.lookupByName(ctx, conn, app)
		return err
	}); err != nil {
		return list, err
	}
	if _, err := p.settleOrphanCaptures(app); err != nil {
		return list, err
	}
	metas, err := p.readMetas(app)
	if err != nil {
		return list, err
	}
	for _, m := range metas {
		list.Backups = append(list.Backups, m.backup())
	}
	return list, nil
}

func (p *Provider) readMetas(app string) ([]meta, error) {
	entries, err := os.ReadDir(p.appDir(app))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, drill.Wrap(drill.ECONFIG, err, "cannot read the backup directory %s", p.appDir(app))
	}
	var out []meta
	for _, e := range entries {
		name := e.Name()
		if !strings.HasPrefix(name, "b") || !strings.HasSuffix(name, ".json") {
			continue
		}
		num, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(name, "b"), ".json"))
		if err != nil {
			continue
		}
		m := meta{ID: drill.FormatBackupID('b', num), Num: num, App: app, Status: drill.BackupFailed}
		data, err := os.ReadFile(filepath.Join(p.appDir(app), name))
		if err == nil {
			err = json.Unmarshal(data, &m)
		}
		if err != nil {
			m.Error = "unreadable metadata"
		}
		m.Num, m.ID = num, drill.FormatBackupID('b', num)
		if m.Status == drill.BackupSucceeded {
			if st, err := os.Stat(p.dumpPath(app, num)); err != nil || st.Size() != m.SizeBytes {
				m.Status, m.Error = drill.BackupFailed, "dump file missing or changed size"
			}
		}
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Num < out[j].Num })
	return out, nil
}

// reserve claims the next backup number by creating its metadata file
// exclusively, so two drills never share a number.
func (p *Provider) reserve(app, drillID string) (meta, func(), error) {
	if err := ensureDir(p.appDir(app)); err != nil {
		return meta{}, nil, err
	}
	metas, err := p.readMetas(app)
	if err != nil {
		return meta{}, nil, err
	}
	num := 1
	if len(metas) > 0 {
		num = metas[len(metas)-1].Num + 1
	}
	for ; ; num++ {
		f, err := os.OpenFile(p.metaPath(app, num), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return meta{}, nil, drill.Wrap(drill.ECONFIG, err, "cannot create a backup in %s: set BACKUP_DIR to a writable directory", p.appDir(app))
		}
		_ = f.Close()
		// The capture's lock is taken before its record says running, so a
		// running record whose lock is free was left by a dead process.
		release, err := holdLock(p.lockPath(app, num))
		if err != nil {
			return meta{}, nil, drill.Wrap(drill.ECONFIG, err, "cannot lock backup %s in %s", drill.FormatBackupID('b', num), p.appDir(app))
		}
		m := meta{ID: drill.FormatBackupID('b', num), Num: num, App: app, Status: drill.BackupRunning, CreatedAt: p.cfg.Now().UTC(), Source: app, DrillID: drillID}
		if err := writeMeta(p.metaPath(app, num), m); err != nil {
			release()
			return meta{}, nil, err
		}
		return m, release, nil
	}
}

// lockPath is the file whose flock a capture holds while it runs.
func (p *Provider) lockPath(app string, num int) string {
	return strings.TrimSuffix(p.metaPath(app, num), ".json") + ".lock"
}

// Capture dumps the app's database with pg_dump -Fc. With fingerprint, it
// fingerprints the very snapshot pg_dump reads (pg_export_snapshot), in
// parallel with the dump, so the comparison is exact while production keeps
// taking writes.
func (p *Provider) Capture(ctx context.Context, app string, fingerprint bool, progress drill.ProgressFunc) (drill.Capture, error) {
	var props []string
	if err := p.withAdmin(ctx, func(conn *pgx.Conn) error {
		if err := p.checkTools(ctx, conn); err != nil {
			return err
		}
		d, err := p.lookupByName(ctx, conn, app)
		if err != nil {
			return err
		}
		props, err = p.databaseProps(ctx, conn, d.oid)
		return err
	}); err != nil {
		return drill.Capture{}, err
	}
	noPublic, err := p.lacksPublic(ctx, app)
	if err != nil {
		return drill.Capture{}, err
	}
	m, release, err := p.reserve(app, drill.DrillFrom(ctx))
	if err != nil {
		return drill.Capture{}, err
	}
	defer release()
	fp, err := p.dump(ctx, app, m, fingerprint, progress)
	if err != nil {
		m.Status, m.Error = drill.BackupFailed, p.redactor.Redact(drill.ErrorMessage(err))
		if ctx.Err() != nil {
			m.Status = drill.BackupCanceled
		}
		_ = writeMeta(p.metaPath(app, m.Num), m)
		return drill.Capture{}, err
	}
	st, err := os.Stat(p.dumpPath(app, m.Num))
	if err != nil {
		return drill.Capture{}, drill.Wrap(drill.EFAILED, err, "backup %s vanished right after it was written", m.ID)
	}
	done := p.cfg.Now().UTC()
	m.Status, m.FinishedAt, m.SizeBytes, m.Fingerprint, m.DatabaseProps = drill.BackupSucceeded, &done, st.Size(), fp, props
	m.NoPublicSchema = noPublic
	if err := writeMeta(p.metaPath(app, m.Num), m); err != nil {
		return drill.Capture{}, err
	}
	return drill.Capture{Backup: m.backup(), Source: fp, Exact: fp != nil}, nil
}

// dump runs pg_dump into a partial file and renames it on success, reading
// one exported snapshot with the fingerprint when asked.
func (p *Provider) dump(ctx context.Context, app string, m meta, fingerprint bool, progress drill.ProgressFunc) (*drill.Fingerprint, error) {
	conn, err := p.connect(ctx, app)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, p.interpret(err, app)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	var snapshot string
	if err := tx.QueryRow(ctx, `SELECT pg_export_snapshot()`).Scan(&snapshot); err != nil {
		return nil, p.interpret(err, app)
	}

	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg     sync.WaitGroup
		fp     drill.Fingerprint
		fpErr  error
		target = p.dumpPath(app, m.Num)
		part   = target + ".partial"
	)
	if fingerprint {
		wg.Go(func() {
			fp, fpErr = pgsum.Fingerprint(ctx, p.connConfigFor(ctx, app), pgsum.Options{Workers: p.cfg.Workers, Snapshot: snapshot})
			if fpErr != nil {
				cancel()
			}
		})
	}
	stopWatch := watchFile(part, progress)
	_, dumpErr := p.runTool(ctx, p.cfg.PgDump, nil,
		"--format=custom", "--compress=1", "--snapshot="+snapshot, "--file="+part, "--dbname="+app)
	stopWatch()
	if dumpErr != nil {
		cancel()
	}
	wg.Wait()
	if dumpErr != nil {
		_ = os.Remove(part)
		switch {
		case parent.Err() != nil:
			return nil, parent.Err()
		case errors.Is(dumpErr, context.Canceled) && fpErr != nil:
			// The fingerprint failed first and stopped the dump: its error
			// is the cause. (A dump that failed on its own stops the
			// fingerprint, whose error is then only the cancellation.)
			return nil, p.interpret(fpErr, app)
		}
		return nil, drill.Wrap(drill.EFAILED, dumpErr, "pg_dump of %s failed: %s%s", app, toolMessage(dumpErr), spaceHint(dumpErr, p.cfg.BackupDir))
	}
	if fpErr != nil {
		_ = os.Remove(part)
		return nil, p.interpret(fpErr, app)
	}
	if err := os.Rename(part, target); err != nil {
		_ = os.Remove(part)
		return nil, drill.Wrap(drill.EFAILED, err, "cannot store backup %s", m.ID)
	}
	if !fingerprint {
		return nil, nil
	}
	return &fp, nil
}

// watchFile reports the growing size of path every second until stopped.
func watchFile(path string, progress drill.ProgressFunc) (stop func()) {
	if progress == nil {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if st, err := os.Stat(path); err == nil {
					progress(drill.Progress{Bytes: st.Size(), Message: "dumping"})
				}
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

func spaceHint(err error, dir string) string {
	if strings.Contains(err.Error(), "No space left") {
		return fmt.Sprintf(" (the disk holding %s is full: free space or set BACKUP_DIR elsewhere)", dir)
	}
	return ""
}

// settleCaptures finishes the records of the captures drill drillID left
// running when its process died: each is marked failed, with why, and its
// partial dump removed. Call it once the drill's sessions are gone.
func (p *Provider) settleCaptures(drillID string) error {
	dirs, err := os.ReadDir(p.cfg.BackupDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return drill.Wrap(drill.ECONFIG, err, "cannot read the backup directory %s", p.cfg.BackupDir)
	}
	for _, dir := range dirs {
		if !dir.IsDir() {
			continue
		}
		metas, err := p.readMetas(dir.Name())
		if err != nil {
			return err
		}
		for _, m := range metas {
			if m.DrillID != drillID || m.Status != drill.BackupRunning {
				continue
			}
			why := fmt.Sprintf("the process taking it (drill %s) died before it finished; drill %s was resumed", drillID, drillID)
			if err := p.failCapture(m, why); err != nil {
				return err
			}
		}
	}
	return nil
}

// SettleCaptures settles, for every app, the captures whose process died
// (settleOrphanCaptures), and says what it did.
func (p *Provider) SettleCaptures(ctx context.Context) ([]string, error) {
	dirs, err := os.ReadDir(p.cfg.BackupDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, drill.Wrap(drill.ECONFIG, err, "cannot read the backup directory %s", p.cfg.BackupDir)
	}
	var out []string
	for _, dir := range dirs {
		if !dir.IsDir() {
			continue
		}
		ids, err := p.settleOrphanCaptures(dir.Name())
		if err != nil {
			return out, err
		}
		for _, id := range ids {
			out = append(out, fmt.Sprintf("Backup %s of %s was left running by a process that died: marked failed, its partial dump removed.", id, dir.Name()))
		}
	}
	return out, nil
}

// settleOrphanCaptures finishes the records of app's captures whose
// process died (a killed `restore-drill capture`, or a drill's capture not
// yet resumed): a running record whose lock is free. Each is marked failed,
// with why, and its partial dump removed; listing backups shows the truth.
func (p *Provider) settleOrphanCaptures(app string) (settled []string, err error) {
	metas, err := p.readMetas(app)
	if err != nil {
		return nil, err
	}
	for _, m := range metas {
		if m.Status != drill.BackupRunning || !holderGone(p.lockPath(app, m.Num)) {
			continue
		}
		why := "the process taking it died before it finished"
		if m.DrillID != "" {
			why += fmt.Sprintf(" (drill %s)", m.DrillID)
		}
		if err := p.failCapture(m, why); err != nil {
			return settled, err
		}
		settled = append(settled, m.ID)
	}
	return settled, nil
}

// failCapture marks capture m failed with why and removes its partial dump
// and its lock.
func (p *Provider) failCapture(m meta, why string) error {
	if err := os.Remove(p.dumpPath(m.App, m.Num) + ".partial"); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return drill.Wrap(drill.EFAILED, err, "cannot remove the partial dump of backup %s", m.ID)
	}
	m.Status, m.Error = drill.BackupFailed, why
	if err := writeMeta(p.metaPath(m.App, m.Num), m); err != nil {
		return err
	}
	_ = os.Remove(p.lockPath(m.App, m.Num))
	return nil
}

// maintenanceFile keeps the connection limit an app's database had before a
// drill turned maintenance on.
type maintenanceFile struct{ path string }

func (f maintenanceFile) read() (int, bool, error) {
	data, err := os.ReadFile(f.path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, drill.Wrap(drill.EFAILED, err, "cannot read the saved connection limit %s", f.path)
	}
	var v struct {
		ConnLimit int `json:"conn_limit"`
	}
	if err := json.Unmarshal(data, &v); err != nil {
		return 0, false, drill.Wrap(drill.EFAILED, err, "the saved connection limit %s is corrupt: set it back with ALTER DATABASE ... CONNECTION LIMIT", f.path)
	}
	return v.ConnLimit, true, nil
}

func (f maintenanceFile) write(limit int) error {
	data, _ := json.Marshal(map[string]int{"conn_limit": limit})
	if err := os.WriteFile(f.path, data, 0o600); err != nil {
		return drill.Wrap(drill.EFAILED, err, "cannot save the connection limit before maintenance in %s", f.path)
	}
	return nil
}

func (f maintenanceFile) remove() error {
	if err := os.Remove(f.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return drill.Wrap(drill.EFAILED, err, "cannot remove %s", f.path)
	}
	return nil
}
