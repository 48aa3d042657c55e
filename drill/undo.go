package drill

import (
	"context"
	"fmt"
)

// undoStack holds the reversal of every change a drill has made, newest
// last, as records (see UndoRecord) journaled before each change is made.
// The drill's own reversing steps (promote back, maintenance off, destroy
// the scratch database) take their entry off the stack and run it as a
// normal step; on failure, cancellation or a refused confirmation, whatever
// is left runs in reverse.
type undoStack struct {
	entries []*undoEntry
}

type undoEntry struct {
	rec UndoRecord
}

func (s *undoStack) add(e *undoEntry) { s.entries = append(s.entries, e) }

// take removes e from the stack, so that the drill can run it as a step.
func (s *undoStack) take(e *undoEntry) {
	for i, x := range s.entries {
		if x == e {
			s.entries = append(s.entries[:i], s.entries[i+1:]...)
			return
		}
	}
}

// find returns the entry of the given kind, if any.
func (s *undoStack) find(kind UndoKind) *undoEntry {
	for _, e := range s.entries {
		if e.rec.Kind == kind {
			return e
		}
	}
	return nil
}

// popAll empties the stack and returns its entries newest first.
func (s *undoStack) popAll() []*undoEntry {
	out := make([]*undoEntry, 0, len(s.entries))
	for i := len(s.entries) - 1; i >= 0; i-- {
		out = append(out, s.entries[i])
	}
	s.entries = nil
	return out
}

// push journals u, then puts it on the stack. A change whose undo cannot be
// journaled must not be made.
func (d *run) push(ctx context.Context, u UndoRecord) (*undoEntry, error) {
	u.App, u.DrillID = d.opts.App, d.opts.DrillID
	e := &undoEntry{rec: u}
	if j := d.r.Journal; d.journaled {
		id, err := j.PushUndo(ctx, d.opts.DrillID, u)
		if err != nil {
			return nil, Wrap(EFAILED, err, "cannot journal the undo of %s, so %s was not done", u.Step, u.Step)
		}
		e.rec.ID = id
	}
	d.undo.add(e)
	return e, nil
}

// update journals what a change learned about its undo.
func (d *run) update(ctx context.Context, e *undoEntry) {
	if j := d.r.Journal; d.journaled && e != nil {
		if err := j.UpdateUndo(ctx, d.opts.DrillID, e.rec); err != nil {
			d.logger.Error("cannot journal an undo update", "step", e.rec.Step, "err", err)
		}
	}
}

// keepState journals what the provider remembers about the app with e, once
// its change is made.
func (d *run) keepState(ctx context.Context, e *undoEntry) {
	sk, ok := d.r.Provider.(StateKeeper)
	if !ok || e == nil {
		return
	}
	state, err := sk.SaveState(d.opts.App)
	if err != nil {
		d.logger.Error("cannot read the provider's state", "step", e.rec.Step, "err", err)
		return
	}
	e.rec.State = state
	// Journaled even when the change was cancelled half-way: the state is
	// what an undo in another process needs most then.
	d.update(context.WithoutCancel(ctx), e)
}

// done journals that e ran or is no longer needed.
func (d *run) done(ctx context.Context, e *undoEntry) {
	if j := d.r.Journal; d.journaled {
		if err := j.DropUndo(ctx, d.opts.DrillID, e.rec.ID); err != nil {
			d.logger.Error("cannot journal a finished undo", "step", e.rec.Step, "err", err)
		}
	}
}

// undoAll runs recs, newest first, emitting what happens and calling done
// with the index of each undo that ran. It stops at the first failed undo
// that leaves production served by a drill's database or half-restored
// (promote back, roll back a restore): undoing more (maintenance off,
// destroying the scratch) would then put a wrong database in front of
// users or drop the one serving them. What was not attempted is reported
// as failed, with why.
func (r *Runner) undoAll(ctx context.Context, recs []UndoRecord, emit func(Event), done func(int)) (undone, failed []string) {
	undone = []string{}
	for i, u := range recs {
		err := protectUndo(func() error { return r.Undo(ctx, u) })
		if err == nil && u.Kind == UndoAdopt {
			// The restore went forward: what was journaled before the
			// adoption (promote back, destroy the restored database) no
			// longer applies.
			for j := i; j < len(recs); j++ {
				done(j)
			}
			emit(Event{Step: u.Step, Kind: StepUndone, Message: u.Database.Name + " now serves " + u.App + " as its own database"})
			return append(undone, u.Step), failed
		}
		if err == nil {
			done(i)
			undone = append(undone, u.Step)
			emit(Event{Step: u.Step, Kind: StepUndone, Message: "undone: " + u.Step})
			continue
		}
		r.logger().Error("undo failed", "step", u.Step, "drill", u.DrillID, "err", r.redactor().Redact(err.Error()))
		failed = append(failed, u.Step)
		emit(Event{Step: u.Step, Kind: StepUndoFailed, Message: r.redactor().Redact(fmt.Sprintf("Undoing %s FAILED: %s. Act by hand.", u.Step, ErrorMessage(err)))})
		if u.Kind == UndoRollbackRestore || u.Kind == UndoAdopt || (u.Kind == UndoPromoteBack && r.mayServeScratch(ctx, u.App)) {
			for _, rest := range recs[i+1:] {
				failed = append(failed, rest.Step)
				emit(Event{Step: rest.Step, Kind: StepUndoFailed, Message: fmt.Sprintf("Not undoing %s: %s must be put right by hand first (it is not served by its own database, or holds a partial restore).", rest.Step, u.App)})
			}
			return undone, failed
		}
	}
	return undone, failed
}

// mayServeScratch reports whether app may be served by a drill's database
// after a promote back failed: true unless the platform says for sure that
// it is not (served by a database no drill created, or by none at all).
func (r *Runner) mayServeScratch(ctx context.Context, app string) bool {
	s, err := r.Provider.Serving(ctx, app)
	switch {
	case err == nil:
		return s.DrillID != ""
	case ErrorCode(err) == ENOTFOUND:
		return false
	}
	return true
}

// protectUndo turns a panic in an undo into an error, so the rest still run.
func protectUndo(fn func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = Errorf(EINTERNAL, "internal error while undoing: %v", p)
		}
	}()
	return fn()
}

func (r *Runner) redactor() *Redactor {
	if r.Redactor != nil {
		return r.Redactor
	}
	return NewRedactor()
}
