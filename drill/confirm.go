package drill

import (
	"context"
	"time"
)

// ConfirmRequest asks a person to confirm a destructive step by typing a
// text.
type ConfirmRequest struct {
	DrillID string
	App     string
	// Step is the step that needs the confirmation.
	Step string
	// Action says in one line what will happen, e.g. "turn on maintenance
	// mode for demo".
	Action string
	// Plan states exactly what the step changes and what restarts.
	Plan []string
	// Expect is the text the person must type: the app name, or app and
	// backup id for a restore onto production.
	Expect string
	// Requester is who started the drill, for two-person rules.
	Requester string
}

// Confirmation records who confirmed what, with what text, and when.
type Confirmation struct {
	Step  string    `json:"step"`
	User  string    `json:"user"`
	Typed string    `json:"typed"`
	At    time.Time `json:"at"`
}

// Confirmer asks people for typed confirmations. Confirm returns the
// confirmation as typed; the drill itself checks the text. It returns an
// EREFUSED error when the person refused or typed nothing, and an error
// wrapping ErrExpired when nobody answered in time.
type Confirmer interface {
	Confirm(ctx context.Context, req ConfirmRequest) (Confirmation, error)
}

// ConfirmerFunc adapts a function to Confirmer.
type ConfirmerFunc func(ctx context.Context, req ConfirmRequest) (Confirmation, error)

// Confirm calls f.
func (f ConfirmerFunc) Confirm(ctx context.Context, req ConfirmRequest) (Confirmation, error) {
	return f(ctx, req)
}

// ErrExpired is wrapped by a Confirmer's error when a confirmation expired.
var ErrExpired = Errorf(EREFUSED, "the confirmation expired before anyone typed it")
