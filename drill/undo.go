package drill

import "context"

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
	d.update(ctx, e)
}

// done journals that e ran or is no longer needed.
func (d *run) done(ctx context.Context, e *undoEntry) {
	if j := d.r.Journal; d.journaled {
		if err := j.DropUndo(ctx, d.opts.DrillID, e.rec.ID); err != nil {
			d.logger.Error("cannot journal a finished undo", "step", e.rec.Step, "err", err)
		}
	}
}
