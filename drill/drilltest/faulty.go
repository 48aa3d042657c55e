package drilltest

import (
	"context"
	"sync"

	"github.com/restore-drill/restore-drill/drill"
)

// Faulty wraps a real provider and fails chosen calls, so tests can prove
// the undo stack for a failure at every step. It is a decorator over a real
// provider, not a mock: every call it does not fail goes to the platform.
type Faulty struct {
	drill.Provider

	mu sync.Mutex
	// failures maps a method name ("Capture", "Promote", ...) to the error
	// its nth call returns; see FailOn.
	failures map[string]fault
	calls    map[string]int
	// After, when set, runs after each successful call with the method's
	// name, so tests can act mid-drill (drop a database, alter a restore).
	After func(method string, args ...any)
}

type fault struct {
	nth int
	err error
	// after: the call is made, then fails (a failure half-way).
	after bool
	// onward: every call from the nth on fails.
	onward bool
}

func (ft fault) hits(n int) bool { return ft.nth == n || (ft.onward && n >= ft.nth) }

// FailFrom makes every call of method from the nth on return err.
func (f *Faulty) FailFrom(method string, nth int, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failures[method] = fault{nth: nth, err: err, onward: true}
}

// NewFaulty wraps p.
func NewFaulty(p drill.Provider) *Faulty {
	return &Faulty{Provider: p, failures: map[string]fault{}, calls: map[string]int{}}
}

// FailOn makes the nth call (from 1) of method return err.
func (f *Faulty) FailOn(method string, nth int, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failures[method] = fault{nth: nth, err: err}
}

// Calls returns how often method was called.
func (f *Faulty) Calls(method string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[method]
}

// FailAfter makes the nth call of method do its work and then return err:
// a failure half-way, after the platform changed.
func (f *Faulty) FailAfter(method string, nth int, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failures[method] = fault{nth: nth, err: err, after: true}
}

func (f *Faulty) check(method string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[method]++
	if ft, ok := f.failures[method]; ok && ft.hits(f.calls[method]) && !ft.after {
		return ft.err
	}
	return nil
}

// late returns the error a FailAfter planned for the call just made.
func (f *Faulty) late(method string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if ft, ok := f.failures[method]; ok && ft.hits(f.calls[method]) && ft.after {
		return ft.err
	}
	return nil
}

// FaultyEmergency is Faulty for an EmergencyProvider.
type FaultyEmergency struct {
	*Faulty
	ep drill.EmergencyProvider
}

var _ drill.EmergencyProvider = (*FaultyEmergency)(nil)

// NewFaultyEmergency wraps ep.
func NewFaultyEmergency(ep drill.EmergencyProvider) *FaultyEmergency {
	return &FaultyEmergency{Faulty: NewFaulty(ep), ep: ep}
}

// RestoreProduction implements drill.EmergencyProvider.
func (f *FaultyEmergency) RestoreProduction(ctx context.Context, app string, b drill.Backup, proof drill.Confirmation, progress drill.ProgressFunc) (drill.RestoreResult, error) {
	if err := f.check("RestoreProduction"); err != nil {
		return drill.RestoreResult{}, err
	}
	res, err := f.ep.RestoreProduction(ctx, app, b, proof, progress)
	if err == nil {
		err = f.late("RestoreProduction")
	}
	return res, err
}

// Adopt implements drill.EmergencyProvider.
func (f *FaultyEmergency) Adopt(ctx context.Context, app string, db drill.Database) (drill.Database, error) {
	if err := f.check("Adopt"); err != nil {
		return drill.Database{}, err
	}
	return f.ep.Adopt(ctx, app, db)
}

// Lookup implements drill.EmergencyProvider.
func (f *FaultyEmergency) Lookup(ctx context.Context, db drill.Database) (drill.Database, error) {
	if err := f.check("Lookup"); err != nil {
		return drill.Database{}, err
	}
	return f.ep.Lookup(ctx, db)
}

// RemoveHint implements drill.EmergencyProvider.
func (f *FaultyEmergency) RemoveHint(app string, db drill.Database) string {
	return f.ep.RemoveHint(app, db)
}

func (f *Faulty) after(method string, args ...any) {
	if f.After != nil {
		f.After(method, args...)
	}
}

// Describe implements drill.Provider.
func (f *Faulty) Describe(ctx context.Context, app string) (drill.App, error) {
	if err := f.check("Describe"); err != nil {
		return drill.App{}, err
	}
	return f.Provider.Describe(ctx, app)
}

// Backups implements drill.Provider.
func (f *Faulty) Backups(ctx context.Context, app string) (drill.BackupList, error) {
	if err := f.check("Backups"); err != nil {
		return drill.BackupList{}, err
	}
	return f.Provider.Backups(ctx, app)
}

// WriteCanary implements drill.Provider.
func (f *Faulty) WriteCanary(ctx context.Context, app string, c drill.Canary) error {
	if err := f.check("WriteCanary"); err != nil {
		return err
	}
	err := f.Provider.WriteCanary(ctx, app, c)
	f.after("WriteCanary", app)
	return err
}

// Capture implements drill.Provider.
func (f *Faulty) Capture(ctx context.Context, app string, fp bool, progress drill.ProgressFunc) (drill.Capture, error) {
	if err := f.check("Capture"); err != nil {
		return drill.Capture{}, err
	}
	c, err := f.Provider.Capture(ctx, app, fp, progress)
	if err == nil {
		f.after("Capture", app, c)
	}
	return c, err
}

// Fingerprint implements drill.Provider.
func (f *Faulty) Fingerprint(ctx context.Context, db drill.Database) (drill.Fingerprint, error) {
	if err := f.check("Fingerprint"); err != nil {
		return drill.Fingerprint{}, err
	}
	return f.Provider.Fingerprint(ctx, db)
}

// FindCanary implements drill.Provider.
func (f *Faulty) FindCanary(ctx context.Context, db drill.Database, c drill.Canary) (bool, error) {
	if err := f.check("FindCanary"); err != nil {
		return false, err
	}
	return f.Provider.FindCanary(ctx, db, c)
}

// CreateScratch implements drill.Provider.
func (f *Faulty) CreateScratch(ctx context.Context, app, drillID string, progress drill.ProgressFunc) (drill.Database, error) {
	if err := f.check("CreateScratch"); err != nil {
		return drill.Database{}, err
	}
	db, err := f.Provider.CreateScratch(ctx, app, drillID, progress)
	if err == nil {
		f.after("CreateScratch", db)
	}
	return db, err
}

// DestroyScratch implements drill.Provider.
func (f *Faulty) DestroyScratch(ctx context.Context, db drill.Database) error {
	if err := f.check("DestroyScratch"); err != nil {
		return err
	}
	return f.Provider.DestroyScratch(ctx, db)
}

// Restore implements drill.Provider.
func (f *Faulty) Restore(ctx context.Context, b drill.Backup, target drill.Database, progress drill.ProgressFunc) (drill.RestoreResult, error) {
	if err := f.check("Restore"); err != nil {
		return drill.RestoreResult{}, err
	}
	res, err := f.Provider.Restore(ctx, b, target, progress)
	if err == nil {
		f.after("Restore", b, target)
	}
	return res, err
}

// SetMaintenance implements drill.Provider.
func (f *Faulty) SetMaintenance(ctx context.Context, app string, on bool) error {
	if err := f.check("SetMaintenance"); err != nil {
		return err
	}
	return f.Provider.SetMaintenance(ctx, app, on)
}

// Promote implements drill.Provider.
func (f *Faulty) Promote(ctx context.Context, app string, db drill.Database) error {
	if err := f.check("Promote"); err != nil {
		return err
	}
	err := f.Provider.Promote(ctx, app, db)
	if err == nil {
		f.after("Promote", app, db)
	}
	return err
}

// Serving implements drill.Provider.
func (f *Faulty) Serving(ctx context.Context, app string) (drill.Database, error) {
	if err := f.check("Serving"); err != nil {
		return drill.Database{}, err
	}
	return f.Provider.Serving(ctx, app)
}
