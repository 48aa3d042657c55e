package drill

import (
	"sync"
	"time"
)

// EventKind says what happened to a step.
type EventKind string

// Event kinds.
const (
	StepStarted   EventKind = "started"
	StepProgress  EventKind = "progress"
	StepSucceeded EventKind = "succeeded"
	StepFailed    EventKind = "failed"
	StepSkipped   EventKind = "skipped"
	// StepUndone: a step's change was reversed by the undo stack.
	StepUndone EventKind = "undone"
	// StepUndoFailed: reversing a step's change failed; people must act.
	StepUndoFailed EventKind = "undo_failed"
	// DrillNote is a fact or warning about the drill, not tied to a step.
	DrillNote EventKind = "note"
	// DrillConfirmed: a person typed a confirmation.
	DrillConfirmed EventKind = "confirmed"
	// DrillFinished: the drill ended; Report holds the verdict.
	DrillFinished EventKind = "finished"
	// DrillParked: the drill waits for a confirmation with no process
	// attached; Message says until when.
	DrillParked EventKind = "parked"
	// DrillContinued: a parked drill is taken up again, after its
	// confirmation was answered or expired.
	DrillContinued EventKind = "continued"
)

// Event is one thing that happened during a drill, for progress displays.
type Event struct {
	DrillID string
	App     string
	Step    string
	Kind    EventKind
	At      time.Time
	// Duration is the step's duration, on StepSucceeded and StepFailed.
	Duration time.Duration
	// Bytes and Total are set on StepProgress when the provider knows them.
	Bytes, Total int64
	Message      string
	// Report is set on DrillFinished.
	Report *Report
}

// Percent returns the progress in percent, or -1 when the total is unknown.
func (e Event) Percent() float64 {
	if e.Total <= 0 {
		return -1
	}
	return 100 * float64(e.Bytes) / float64(e.Total)
}

// Sink receives a drill's events. Event must not block for long: a slow sink
// must buffer or drop progress events.
type Sink interface {
	Event(Event)
}

// SinkFunc adapts a function to Sink.
type SinkFunc func(Event)

// Event calls f(e).
func (f SinkFunc) Event(e Event) { f(e) }

// Sinks sends every event to each of its sinks in turn.
type Sinks []Sink

// Event sends e to every sink.
func (s Sinks) Event(e Event) {
	for _, sink := range s {
		if sink != nil {
			sink.Event(e)
		}
	}
}

// Recorder is a Sink that keeps every event, for tests and for sinks that
// replay.
type Recorder struct {
	mu     sync.Mutex
	events []Event
}

// Event records e.
func (r *Recorder) Event(e Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

// Events returns a copy of the events recorded so far.
func (r *Recorder) Events() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Event(nil), r.events...)
}
