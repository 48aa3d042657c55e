package drill

import (
	"context"
	"fmt"
	"time"
)

// Abandoned is a drill whose owning process died before it finished.
type Abandoned struct {
	Record DrillRecord
	// Undo holds the undo records not yet run, oldest first.
	Undo []UndoRecord
	// Steps are the steps journaled before the process died.
	Steps []StepRecord
	// Release gives the drill up; the resumer owns it until then.
	Release func()
}

// ResumeJournal is a journal that can hand over drills whose owner died.
type ResumeJournal interface {
	Journal
	// Abandoned returns the unfinished drills whose owner is dead, each
	// owned by the caller until released. A live owner's drill is never
	// returned.
	Abandoned(ctx context.Context) ([]Abandoned, error)
}

// Resume finishes every drill a dead process left unfinished by running its
// journaled undo stack, and returns one report per drill saying what it did.
// Production ends out of maintenance, served by its original database, and
// with no scratch database left (unless the drill asked to keep it).
func (r *Runner) Resume(ctx context.Context, j ResumeJournal) ([]*Report, error) {
	if s, ok := r.Provider.(CaptureSettler); ok {
		settled, err := s.SettleCaptures(ctx)
		if err != nil {
			r.logger().Error("cannot settle the captures dead processes left running", "err", ErrorMessage(err))
		}
		for _, line := range settled {
			r.logger().Warn(line)
		}
	}
	list, err := j.Abandoned(ctx)
	if err != nil {
		return nil, err
	}
	var out []*Report
	for _, a := range list {
		if a.Record.Provider != r.Provider.Name() {
			a.Release()
			continue
		}
		out = append(out, r.resumeOne(ctx, j, a))
	}
	return out, nil
}

func (r *Runner) resumeOne(ctx context.Context, j Journal, a Abandoned) *Report {
	defer a.Release()
	rec := a.Record
	rep := &Report{
		DrillID: rec.DrillID, App: rec.App, Provider: rec.Provider, Mode: rec.Mode, Requester: rec.Requester,
		Result: Failed, StartedAt: rec.StartedAt, Steps: a.Steps, Tables: []TableResult{}, Undone: []string{},
		Confirmations: []Confirmation{}, Checks: []Check{},
	}
	last := "its start"
	if len(a.Steps) > 0 {
		last = a.Steps[len(a.Steps)-1].Name
	}
	emit := func(e Event) {
		e.DrillID, e.App, e.At = rec.DrillID, rec.App, r.now()
		e.Message = r.redactor().Redact(e.Message)
		if r.Sink != nil {
			r.Sink.Event(e)
		}
	}
	emit(Event{Kind: DrillNote, Message: fmt.Sprintf("Drill %s of %s was left unfinished after %s by a process that died; undoing it.", rec.DrillID, rec.App, last)})
	ctx = WithDrill(ctx, rec.DrillID)
	if q, ok := r.Provider.(Quiescer); ok {
		// Statements the dead process sent may still be running on the
		// server (a CREATE DATABASE, a pg_restore): stop them first, or the
		// undo could run before what it undoes.
		if err := q.Quiesce(ctx, rec.DrillID); err != nil {
			r.logger().Error("cannot stop the dead drill's sessions", "drill", rec.DrillID, "err", err)
		}
	}
	var recs []UndoRecord
	for i := len(a.Undo) - 1; i >= 0; i-- {
		if u := a.Undo[i]; !(u.Kind == UndoDestroyScratch && rec.Keep) {
			recs = append(recs, u)
		}
	}
	// What the dead process's provider remembered rides with the undo
	// records.
	r.loadStates(rec.App, rec.DrillID, a.Undo)
	uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Minute)
	defer cancel()
	rep.Undone, rep.UndoFailed = r.undoAll(uctx, recs, emit, func(i int) {
		if err := j.DropUndo(uctx, rec.DrillID, recs[i].ID); err != nil {
			r.logger().Error("cannot journal a finished undo", "drill", rec.DrillID, "err", err)
		}
	})
	rep.EndedAt = r.now()
	rep.TotalSeconds = rep.EndedAt.Sub(rep.StartedAt).Seconds()
	rep.Error = fmt.Sprintf("the process running this drill died after %s; the drill was resumed and undone", last)
	if len(rep.UndoFailed) > 0 {
		rep.Error += fmt.Sprintf(", but undoing %v failed: act by hand", rep.UndoFailed)
	}
	if err := j.Finish(context.WithoutCancel(ctx), rep); err != nil {
		r.logger().Error("cannot journal the resumed drill's report", "drill", rec.DrillID, "err", err)
	}
	emit(Event{Kind: DrillFinished, Message: string(rep.Result), Report: rep})
	return rep
}
