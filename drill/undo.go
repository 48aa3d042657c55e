package drill

import "context"

// undoStack holds the reversal of every change a drill has made, newest
// last. A step pushes its undo before it makes its change; the drill's own
// reversing steps (promote back, maintenance off, destroy the scratch
// database) take their entry off the stack and run it as a normal step; on
// failure, cancellation or a refused confirmation, whatever is left runs in
// reverse.
type undoStack struct {
	entries []*undoEntry
}

type undoEntry struct {
	// step is the step whose change this reverses.
	step string
	do   func(ctx context.Context) error
}

func (s *undoStack) push(step string, do func(ctx context.Context) error) *undoEntry {
	e := &undoEntry{step: step, do: do}
	s.entries = append(s.entries, e)
	return e
}

// take removes e from the stack, so that the drill can run it as a step.
func (s *undoStack) take(e *undoEntry) {
	for i, x := range s.entries {
		if x == e {
			s.entries = append(s.entries[:i], s.entries[i+1:]...)
			return
		}
	}
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
