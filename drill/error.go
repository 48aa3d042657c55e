package drill

import (
	"context"
	"errors"
	"fmt"
)

// Error codes. Each transport maps them to its own terms: the terminal to exit
// codes, the Slack bot to ephemeral or thread replies.
const (
	// EINVALID: the input is malformed (an app name, a backup id, a flag).
	EINVALID = "invalid"
	// ENOTFOUND: the app, database or backup named does not exist.
	ENOTFOUND = "not_found"
	// ECONFIG: the tool is set up wrong or cannot reach its platform (bad
	// credentials, unreachable server, missing pg_dump).
	ECONFIG = "config"
	// EREFUSED: a safety rule stopped the action (a database the drill did
	// not create, a confirmation that did not match).
	EREFUSED = "refused"
	// EFAILED: a step ran and failed (a restore with errors, a checksum
	// mismatch, a platform error half-way).
	EFAILED = "failed"
	// ECANCELED: the drill was cancelled.
	ECANCELED = "canceled"
	// EINTERNAL: anything unrecognised.
	EINTERNAL = "internal"
)

// Error is a drill error with a code and a message meant for people: one
// sentence that says what went wrong and what to do.
type Error struct {
	Code    string
	Message string
	// Err is the cause, kept for errors.Is/As and for logs.
	Err error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Message + ": " + e.Err.Error()
	}
	return e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with the given code and formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Cancel is why a drill was cancelled: who asked. A drill's context
// cancelled with it as cause (context.WithCancelCause), or an answer whose
// error wraps it, puts the person in the report (Report.CancelledBy).
type Cancel struct{ By string }

func (c *Cancel) Error() string { return "cancelled by " + c.By }

// Unwrap makes a Cancel a context.Canceled: the drill was cancelled, it did
// not stop for another reason.
func (c *Cancel) Unwrap() error { return context.Canceled }

// cancelledBy returns who cancelled, from err or ctx's cause, or "".
func cancelledBy(ctx context.Context, err error) string {
	var c *Cancel
	if errors.As(err, &c) || errors.As(context.Cause(ctx), &c) {
		return c.By
	}
	return ""
}

// Wrap returns an *Error with the given code and message that wraps err.
func Wrap(code string, err error, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...), Err: err}
}

// ErrorCode returns the code of the first *Error in err's chain, ECANCELED for
// a context cancellation, and EINTERNAL for anything else.
func ErrorCode(err error) string {
	var e *Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &e):
		return e.Code
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return ECANCELED
	}
	return EINTERNAL
}

// ErrorMessage returns the people-facing message of the first *Error in
// err's chain, or a generic one. It never includes the cause's text, which
// may come from a platform and carry details not meant for a channel.
func ErrorMessage(err error) string {
	var e *Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &e):
		return e.Message
	case ErrorCode(err) == ECANCELED:
		return "The drill was cancelled."
	}
	return "Internal error."
}

// IsUsage reports whether err is the user's input or set-up being wrong
// rather than a drill that ran and failed.
func IsUsage(err error) bool {
	switch ErrorCode(err) {
	case EINVALID, ENOTFOUND, ECONFIG:
		return true
	}
	return false
}
