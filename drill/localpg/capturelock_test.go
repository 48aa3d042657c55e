//go:build linux

package localpg_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/restore-drill/restore-drill/drill"
	"github.com/restore-drill/restore-drill/drill/drilltest"
)

// TestBackups_RunningCaptureIsSettledOnlyOnceItsProcessIsGone: a record
// that says running stays running while its capture's lock is held (a live
// capture in another process is never failed), and is marked failed, its
// partial dump removed, once the lock is free (the kernel dropped it with
// the process).
func TestBackups_RunningCaptureIsSettledOnlyOnceItsProcessIsGone(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := newProvider(t, inDir(dir))
	app := drilltest.CreateDatabase(t, "capture_lock")
	appDir := filepath.Join(dir, app)
	if err := os.MkdirAll(appDir, 0o700); err != nil {
		t.Fatal(err)
	}
	rec, _ := json.Marshal(map[string]any{"id": "b001", "num": 1, "app": app, "status": "running", "source": app, "created_at": "2026-12-04T10:00:00Z"})
	for name, data := range map[string][]byte{"b001.json": rec, "b001.dump.partial": []byte("PGDMP"), "b001.lock": nil} {
		if err := os.WriteFile(filepath.Join(appDir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	lock, err := os.OpenFile(filepath.Join(appDir, "b001.lock"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	status := func() drill.BackupStatus {
		t.Helper()
		list, err := p.Backups(context.Background(), app)
		if err != nil || len(list.Backups) != 1 {
			t.Fatalf("backups: %v %+v", err, list.Backups)
		}
		return list.Backups[0].Status
	}
	if got := status(); got != drill.BackupRunning {
		t.Fatalf("a capture whose lock is held reads %s, want running", got)
	}
	if _, err := os.Stat(filepath.Join(appDir, "b001.dump.partial")); err != nil {
		t.Fatalf("a live capture's partial dump was touched: %v", err)
	}
	_ = lock.Close() // what the kernel does when the capturing process dies
	if got := status(); got != drill.BackupFailed {
		t.Fatalf("a capture whose process is gone reads %s, want failed", got)
	}
	if _, err := os.Stat(filepath.Join(appDir, "b001.dump.partial")); !os.IsNotExist(err) {
		t.Errorf("the partial dump is still there: %v", err)
	}
	data, _ := os.ReadFile(filepath.Join(appDir, "b001.json"))
	var m struct{ Error string }
	if json.Unmarshal(data, &m) != nil || m.Error == "" {
		t.Errorf("the record does not say why it failed: %s", data)
	}
}
