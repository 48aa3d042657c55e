package drill

import (
	"context"
	"time"
)

// Provider is a platform that holds apps, their databases and their backups:
// a Postgres server (drill/localpg) or Heroku (drill/heroku). Every method
// takes ctx first and stops when it is cancelled. Errors carry codes (see
// Error): ENOTFOUND for an unknown app or backup, ECONFIG for credentials or
// an unreachable platform, EREFUSED for a target the drill did not create.
type Provider interface {
	// Name is the provider's name: "local" or "heroku".
	Name() string
	// CheckAppName returns an EINVALID error when name cannot be an app on
	// this platform; it makes no call.
	CheckAppName(name string) error
	// Describe returns what preflight needs to know about app.
	Describe(ctx context.Context, app string) (App, error)
	// Backups lists app's backups (oldest first) and backup schedules.
	Backups(ctx context.Context, app string) (BackupList, error)
	// WriteCanary writes the canary row into app's production database and
	// commits it.
	WriteCanary(ctx context.Context, app string, c Canary) error
	// Capture takes a new backup of app's production database. When
	// fingerprint is true the provider also fingerprints the database; see
	// Capture.Exact.
	Capture(ctx context.Context, app string, fingerprint bool, progress ProgressFunc) (Capture, error)
	// Fingerprint computes db's fingerprint.
	Fingerprint(ctx context.Context, db Database) (Fingerprint, error)
	// FindCanary reports whether db holds the canary row.
	FindCanary(ctx context.Context, db Database, c Canary) (bool, error)
	// CreateScratch provisions an empty database for the drill, tagged with
	// its id, and waits until it is ready.
	CreateScratch(ctx context.Context, app, drillID string, progress ProgressFunc) (Database, error)
	// DestroyScratch destroys a database the drill created. It refuses, with
	// EREFUSED, anything else: a database without the drill's tag, or one
	// that serves the app.
	DestroyScratch(ctx context.Context, db Database) error
	// Restore restores backup b onto target. A restore that reports errors
	// fails with EFAILED and the errors in the message; warnings that are
	// not errors come back in RestoreResult.
	Restore(ctx context.Context, b Backup, target Database, progress ProgressFunc) (RestoreResult, error)
	// SetMaintenance turns app's maintenance mode on or off.
	SetMaintenance(ctx context.Context, app string, on bool) error
	// Promote makes db the database that serves app.
	Promote(ctx context.Context, app string, db Database) error
	// Serving returns the database that serves app now.
	Serving(ctx context.Context, app string) (Database, error)
}

// CallCounter is implemented by providers that count their API calls; the
// report then says how many calls the drill made.
type CallCounter interface {
	// Calls returns the number of API calls made so far.
	Calls() int
}

// App is what preflight learns about an app.
type App struct {
	Name string
	// Database is the production database, the one that serves the app.
	Database Database
	// Plan is the production database's plan, where the platform has plans.
	Plan string
	// Maintenance is the app's maintenance mode before the drill.
	Maintenance bool
	// SizeBytes is the production database's size, where known.
	SizeBytes int64
	// Notes are facts preflight should show (e.g. "provisioning restarts the
	// app's dynos").
	Notes []string
	// FullModeRefusal, when set, is the sentence that says why full mode
	// cannot run on this app.
	FullModeRefusal string
}

// Database names a database on a platform. It never holds a URL.
type Database struct {
	// ID is the platform's stable id: the add-on id on Heroku, the oid on a
	// Postgres server.
	ID string `json:"id"`
	// Name is what people call it: an attachment or database name.
	Name string `json:"name"`
	// DrillID is the drill that created it; empty for anything else.
	DrillID string `json:"drill_id,omitempty"`
}

// BackupStatus is a backup's state.
type BackupStatus string

// Backup states.
const (
	BackupSucceeded BackupStatus = "succeeded"
	BackupFailed    BackupStatus = "failed"
	BackupRunning   BackupStatus = "running"
	BackupPending   BackupStatus = "pending"
	BackupCanceled  BackupStatus = "canceled"
)

// Backup is one backup of an app's database.
type Backup struct {
	ID string `json:"id"`
	// Num is the backup's number on its platform. It is part of the JSON
	// form: an undo record journals the backup it restores, and a process
	// resuming it finds the backup by this number.
	Num        int          `json:"num,omitempty"`
	Status     BackupStatus `json:"status"`
	CreatedAt  time.Time    `json:"created_at"`
	FinishedAt *time.Time   `json:"finished_at"`
	SizeBytes  int64        `json:"size_bytes"`
	Scheduled  bool         `json:"scheduled"`
	// Source names the database it was taken from.
	Source string `json:"source,omitempty"`
	// Warnings counts the warnings the platform reported.
	Warnings int `json:"warnings,omitempty"`
	// Fingerprint, where the provider kept one, is the fingerprint of exactly
	// what the backup holds, taken when it was captured. A restore of it can
	// then be compared exactly, however old it is.
	Fingerprint *Fingerprint `json:"-"`
}

// BackupList is an app's backups and schedules.
type BackupList struct {
	App string
	// Backups are oldest first.
	Backups   []Backup
	Schedules []Schedule
	// Scheduling is false where the platform has no backup schedules (a
	// plain Postgres server): then a missing schedule is not a finding.
	Scheduling bool
}

// NewestSucceeded returns the newest successful backup, if any.
func (l BackupList) NewestSucceeded() (Backup, bool) {
	var best Backup
	found := false
	for _, b := range l.Backups {
		if b.Status != BackupSucceeded || b.FinishedAt == nil {
			continue
		}
		if !found || b.FinishedAt.After(*best.FinishedAt) {
			best, found = b, true
		}
	}
	return best, found
}

// FindRef returns the backup ref names: by its legacy name when it has
// one, else by number.
func (l BackupList) FindRef(ref BackupRef) (Backup, bool) {
	if ref.Name != "" {
		for _, b := range l.Backups {
			if b.ID == ref.Name {
				return b, true
			}
		}
		return Backup{}, false
	}
	return l.Find(ref.Num)
}

// Find returns the backup with number num.
func (l BackupList) Find(num int) (Backup, bool) {
	for _, b := range l.Backups {
		if b.Num == num {
			return b, true
		}
	}
	return Backup{}, false
}

// Schedule is a daily backup schedule.
type Schedule struct {
	Hour     int    `json:"hour"`
	Timezone string `json:"timezone"`
}

// Capture is a backup just taken.
type Capture struct {
	Backup Backup
	// Source is the fingerprint of the database as the backup saw it, when
	// asked for.
	Source *Fingerprint
	// Exact is true when Source describes exactly what the backup holds
	// (fingerprint and dump read one snapshot). When false, writes between
	// the fingerprint and the backup show as drift.
	Exact bool
}

// RestoreResult is what a restore reports besides success.
type RestoreResult struct {
	Warnings []string
}

// Canary is the row the drill writes into production before the backup and
// looks for in the restore.
type Canary struct {
	DrillID string
	Token   string
	At      time.Time
}

// Progress is how far a long step has got.
type Progress struct {
	Bytes int64
	// Total is the expected number of bytes, 0 when unknown.
	Total   int64
	Message string
	// Warning marks a message that belongs in the report too: something
	// the platform's own tools would warn about (a follower promoted, a
	// logical backup of a database with Continuous Protection).
	Warning bool
}

// ProgressFunc receives progress of a long step.
type ProgressFunc func(Progress)

type progressKey struct{}

// WithProgress returns ctx carrying progress, so that a provider call
// without a ProgressFunc of its own (Promote) still shows a long wait.
func WithProgress(ctx context.Context, progress ProgressFunc) context.Context {
	return context.WithValue(ctx, progressKey{}, progress)
}

// ProgressOf returns the ProgressFunc ctx carries; one that drops
// everything when it carries none.
func ProgressOf(ctx context.Context) ProgressFunc {
	if f, ok := ctx.Value(progressKey{}).(ProgressFunc); ok && f != nil {
		return f
	}
	return func(Progress) {}
}
