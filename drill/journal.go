package drill

import (
	"context"
	"time"
)

// Journal records a drill as it runs, durably, so that another process can
// finish what a dead one left: every undo is journaled before its change is
// made. Runner works without one (nil), as in tests of the engine alone.
type Journal interface {
	// Begin records a new drill and makes this process its owner until
	// release is called. It fails with ErrLocked when another live drill
	// holds the app, and with ErrFrozen when drills are frozen (unless the
	// record says Force).
	Begin(ctx context.Context, rec DrillRecord) (release func(), err error)
	// Step records a step's outcome.
	Step(ctx context.Context, drillID string, s StepRecord) error
	// PushUndo records an undo before its change is made, and returns its id.
	PushUndo(ctx context.Context, drillID string, u UndoRecord) (int64, error)
	// UpdateUndo rewrites an undo once the change knows more (the id of the
	// database it created).
	UpdateUndo(ctx context.Context, drillID string, u UndoRecord) error
	// DropUndo records that an undo ran, or is no longer needed.
	DropUndo(ctx context.Context, drillID string, id int64) error
	// Confirmed records a typed confirmation.
	Confirmed(ctx context.Context, drillID string, c Confirmation) error
	// Finish records the report and ends the drill.
	Finish(ctx context.Context, rep *Report) error
}

// LockWatcher is implemented by journals whose ownership of a drill can be
// lost while the drill runs: Lost is closed then, and the drill must stop
// at once, since another process may now take it over and undo it. A
// connection to the journal that dies, or the journal unreachable for a
// while, is not a loss: the journal takes the drill's lock again, and only
// if another process took the drill is it lost.
type LockWatcher interface {
	Lost(drillID string) <-chan struct{}
	// LostWhy says why drillID was lost, once Lost is closed: nil for a
	// cancel asked for from another process, else an error whose message
	// says what happened (never a cancellation).
	LostWhy(drillID string) error
	// Notes carries what the drill's thread should be told about the
	// journal while it runs (the state database unreachable, then back).
	Notes(drillID string) <-chan string
}

// ErrStateUnreachable is wrapped when the state database stayed
// unreachable for longer than a drill waits for it.
var ErrStateUnreachable = Errorf(EFAILED, "the state database is unreachable")

// DrillRecord is what a journal keeps about a drill besides its steps.
type DrillRecord struct {
	DrillID   string    `json:"drill_id"`
	App       string    `json:"app"`
	Provider  string    `json:"provider"`
	Mode      Mode      `json:"mode"`
	Requester string    `json:"requester"`
	Channel   string    `json:"channel,omitempty"`
	ThreadTS  string    `json:"thread_ts,omitempty"`
	Keep      bool      `json:"keep"`
	Force     bool      `json:"force,omitempty"`
	StartedAt time.Time `json:"started_at"`
	// ParkedUntil, in a journal's list of unfinished drills, is when the
	// confirmation a parked drill waits for expires; zero for a drill a
	// process runs.
	ParkedUntil time.Time `json:"parked_until,omitzero"`
	// ParkedTicket is the confirmation a parked drill waits for.
	ParkedTicket string `json:"parked_ticket,omitempty"`
}

// ErrLocked is wrapped when another drill holds the app.
var ErrLocked = Errorf(EREFUSED, "another drill holds this app")

// ErrFrozen is wrapped when drills are frozen.
var ErrFrozen = Errorf(EREFUSED, "drills are frozen")

// UndoKind says how to reverse a change.
type UndoKind string

// Undo kinds.
const (
	// UndoDestroyScratch destroys the scratch database of the drill.
	UndoDestroyScratch UndoKind = "destroy_scratch"
	// UndoMaintenance sets maintenance back to Was.
	UndoMaintenance UndoKind = "maintenance"
	// UndoPromoteBack promotes Database, the original, back.
	UndoPromoteBack UndoKind = "promote_back"
	// UndoRollbackRestore restores Backup, the safety backup, in place onto
	// the app's database: the undo of an emergency restore in place.
	UndoRollbackRestore UndoKind = "rollback_restore"
	// UndoAdopt finishes adopting Database, the restored database an
	// emergency restore promoted and checked: past that point the restore
	// goes forward, so its "undo" makes the restored database the app's own
	// (see EmergencyProvider.Adopt). It supersedes the undos journaled
	// before it (promote back, destroy the restored database).
	UndoAdopt UndoKind = "adopt"
)

// UndoRecord is one undo as data, so that a process that did not make the
// change can still reverse it.
type UndoRecord struct {
	ID      int64    `json:"id"`
	Step    string   `json:"step"`
	Kind    UndoKind `json:"kind"`
	App     string   `json:"app"`
	DrillID string   `json:"drill_id"`
	// Database is the scratch database to destroy (its ID may be empty if
	// the process died while creating it), or the original to promote back.
	Database Database `json:"database"`
	// Was is the maintenance state to restore.
	Was bool `json:"was"`
	// Backup is the backup an UndoRollbackRestore restores.
	Backup *Backup `json:"backup,omitempty"`
	// Proof is the confirmation the undone change was made under.
	Proof *Confirmation `json:"proof,omitempty"`
	// State is what the provider needs to reverse the change, as it said
	// after making it (see StateKeeper).
	State string `json:"state,omitempty"`
}

// StateKeeper is implemented by providers that remember between calls what
// they need to reverse a change (Heroku: the formation before maintenance,
// the spare attachment a promote made, the database that served the app).
// The runner journals that state with each undo, so a process resuming a
// dead drill can load it before undoing.
type StateKeeper interface {
	// SaveState returns what the provider remembers about app.
	SaveState(app string) (string, error)
	// LoadState makes the provider remember state about app again.
	LoadState(app, state string) error
	// ForgetState drops what the provider remembers about app: the drill
	// that made the changes left this process (it parked), or a drill's
	// journaled state is about to be loaded in its place.
	ForgetState(app string)
}

// ScratchFinder is implemented by providers that can find a drill's scratch
// database by its tag, for undoing a creation whose result was never
// journaled.
type ScratchFinder interface {
	FindScratch(ctx context.Context, app, drillID string) (Database, bool, error)
}

// Undo reverses one recorded change through the provider. It is what the
// undo stack runs, in the process that made the change or in one resuming
// a dead drill.
func (r *Runner) Undo(ctx context.Context, u UndoRecord) error {
	p := r.Provider
	if sk, ok := p.(StateKeeper); ok && u.State != "" {
		if err := sk.LoadState(u.App, u.State); err != nil {
			return Wrap(EFAILED, err, "cannot load what the provider recorded to undo %s", u.Step)
		}
	}
	switch u.Kind {
	case UndoDestroyScratch:
		db := u.Database
		if db.ID == "" {
			f, ok := p.(ScratchFinder)
			if !ok {
				return nil // nothing was journaled as created, and nothing can be found
			}
			found, ok, err := f.FindScratch(ctx, u.App, u.DrillID)
			if err != nil || !ok {
				return err
			}
			db = found
		}
		if db.DrillID != u.DrillID || db.DrillID == "" {
			return Errorf(EREFUSED, "refusing to destroy %s: drill %s did not create it", db.Name, u.DrillID)
		}
		return p.DestroyScratch(ctx, db)
	case UndoMaintenance:
		return p.SetMaintenance(ctx, u.App, u.Was)
	case UndoPromoteBack:
		if now, err := p.Serving(ctx, u.App); err == nil && now.ID == u.Database.ID && u.State == "" {
			// The process died before it even journaled what the provider
			// knew before the promote: the promote never started.
			return nil
		}
		if err := p.Promote(ctx, u.App, u.Database); err != nil {
			return err
		}
		now, err := p.Serving(ctx, u.App)
		if err != nil {
			return err
		}
		if now.ID != u.Database.ID {
			return Errorf(EFAILED, "%s is served by %s, not its original database %s: promote %s by hand", u.App, now.Name, u.Database.Name, u.Database.Name)
		}
		return nil
	case UndoRollbackRestore:
		ep, ok := p.(EmergencyProvider)
		if !ok || u.Backup == nil || u.Proof == nil {
			return Errorf(EFAILED, "cannot roll back the restore of %s: restore the safety backup by hand", u.App)
		}
		// The rollback is recorded after maintenance went on and dropped
		// before it goes off. Production out of maintenance with the
		// rollback still recorded was brought back by the drill's own
		// process, which could not record it (its state database was
		// unreachable): it serves users, and the safety backup must not
		// overwrite what they wrote since.
		if app, err := p.Describe(ctx, u.App); err == nil && !app.Maintenance {
			return Errorf(EREFUSED, "not restoring the safety backup %s over %s: it is out of maintenance and serving users; if its data must still be rolled back, run `restore-drill restore %s %s --into production`", u.Backup.ID, u.App, u.App, u.Backup.ID)
		}
		// The person who confirmed the restore in place confirmed its
		// rollback to the safety backup taken for exactly that.
		proof := Confirmation{Step: u.Step, User: u.Proof.User + " (automatic rollback)", Typed: ProductionProof(u.App, u.Backup.ID), At: u.Proof.At}
		b := *u.Backup
		if ref, err := ParseBackupRef(b.ID); b.Num <= 0 && err == nil {
			b.Num = ref.Num // journaled before the number was part of the record
		}
		_, err := ep.RestoreProduction(ctx, u.App, b, proof, nil)
		return err
	case UndoAdopt:
		ep, ok := p.(EmergencyProvider)
		if !ok {
			return Errorf(EFAILED, "cannot finish adopting %s as the database of %s: remove its drill tag by hand", u.Database.Name, u.App)
		}
		_, err := ep.Adopt(ctx, u.App, u.Database)
		return err
	}
	return Errorf(EINTERNAL, "unknown undo kind %q", u.Kind)
}

// History reads the reports of past drills.
type History interface {
	// History returns app's last n finished drills, newest first.
	History(ctx context.Context, app string, n int) ([]*Report, error)
}

type drillKey struct{}

// WithDrill returns ctx carrying the id of the drill it works for, so that
// providers can tag the sessions and processes they start with it.
func WithDrill(ctx context.Context, drillID string) context.Context {
	return context.WithValue(ctx, drillKey{}, drillID)
}

// DrillFrom returns the drill id ctx carries, or "".
func DrillFrom(ctx context.Context) string {
	id, _ := ctx.Value(drillKey{}).(string)
	return id
}

// Quiescer is implemented by providers that can stop whatever a dead
// drill's process left running on the platform (a CREATE DATABASE, a
// pg_restore), so that its undo does not race it.
type Quiescer interface {
	Quiesce(ctx context.Context, drillID string) error
}

// CaptureSettler is implemented by providers whose captures can outlive
// their process as records that say "running" (a killed `capture`): it marks
// each one whose process died as failed, with why, removes what it left,
// and says in one sentence each what it settled.
type CaptureSettler interface {
	SettleCaptures(ctx context.Context) ([]string, error)
}

type emergencyKey struct{}

// WithEmergency marks ctx as an emergency restore's: what it provisions
// becomes production, so a provider must create it where production lives
// (not on a sandbox app).
func WithEmergency(ctx context.Context) context.Context {
	return context.WithValue(ctx, emergencyKey{}, true)
}

// IsEmergency reports whether ctx is an emergency restore's.
func IsEmergency(ctx context.Context) bool {
	v, _ := ctx.Value(emergencyKey{}).(bool)
	return v
}
