package drill

import (
	"strings"
	"time"
)

// Result is a drill's verdict.
type Result string

// Verdicts.
const (
	Passed Result = "passed"
	Failed Result = "failed"
)

// Report is a drill's evidence: what ran, how long it took, what the
// checksums said, who confirmed what, and what was undone.
type Report struct {
	DrillID   string    `json:"drill_id"`
	App       string    `json:"app"`
	Provider  string    `json:"provider"`
	Mode      Mode      `json:"mode"`
	Requester string    `json:"requester,omitempty"`
	Result    Result    `json:"result"`
	Error     string    `json:"error"`
	StartedAt time.Time `json:"started_at"`
	EndedAt   time.Time `json:"ended_at"`

	// Cancelled: someone cancelled the drill (CancelledBy, when known); a
	// cancelled drill records no restore time.
	Cancelled   bool   `json:"cancelled,omitempty"`
	CancelledBy string `json:"cancelled_by,omitempty"`

	Backup *ReportBackup `json:"backup"`
	// RPOSeconds is the age, when the drill started, of the newest
	// successful backup taken before it: the data a restore would lose.
	// Null when there was none.
	RPOSeconds     *float64 `json:"rpo_seconds"`
	RestoreSeconds float64  `json:"restore_seconds"`
	// TotalSeconds is the drill's duration from start to verdict.
	TotalSeconds float64 `json:"total_seconds"`

	Canary ReportCanary `json:"canary"`
	// Exact says whether the table comparison is exact (see Comparison).
	Exact bool `json:"exact"`
	// Verification says in one sentence what the comparison found.
	Verification string        `json:"verification,omitempty"`
	Tables       []TableResult `json:"tables"`
	// SchemaDiffs lists each schema object that differs, both sides.
	SchemaDiffs     []SchemaDiff `json:"schema_diffs,omitempty"`
	SchemaMissing   []string     `json:"schema_missing,omitempty"`
	SchemaExtra     []string     `json:"schema_extra,omitempty"`
	SequencesBehind []string     `json:"sequences_behind,omitempty"`

	Checks        []Check        `json:"checks"`
	Steps         []StepRecord   `json:"steps"`
	Undone        []string       `json:"undone"`
	UndoFailed    []string       `json:"undo_failed,omitempty"`
	Confirmations []Confirmation `json:"confirmations"`
	Warnings      []string       `json:"warnings,omitempty"`
	// Scratch is the database the drill created, if any.
	Scratch *Database `json:"scratch,omitempty"`
	// Kept is true when the scratch database was left in place on request.
	Kept bool `json:"kept,omitempty"`
	// APICalls counts the platform API calls the drill made, where the
	// provider counts them (see CallCounter).
	APICalls int `json:"api_calls,omitempty"`

	// The fields below are set by an emergency restore (Runner.Restore).

	// Into is where the backup was restored: "new" or "production".
	Into Into `json:"into,omitempty"`
	// SafetyBackup is the backup of production taken before the restore.
	SafetyBackup *ReportBackup `json:"safety_backup,omitempty"`
	// NowServing names the database that answers for the app at the end.
	NowServing string `json:"now_serving,omitempty"`
	// KeptDatabase names the damaged database kept for forensics (--into
	// new), and RemoveKept says how to remove it once it is not needed.
	KeptDatabase string `json:"kept_database,omitempty"`
	RemoveKept   string `json:"remove_kept,omitempty"`
	// Rollback is the exact command that undoes the restore.
	Rollback string `json:"rollback,omitempty"`
	// Freshness lists the newest timestamps of the restored data, so people
	// see how recent it is before it serves.
	Freshness []Freshness `json:"freshness,omitempty"`
	// ProductionState says in one sentence what state production is in,
	// whatever happened.
	ProductionState string `json:"production_state,omitempty"`
}

// ReportBackup is the backup a drill restored.
type ReportBackup struct {
	ID        string    `json:"id"`
	SizeBytes int64     `json:"size_bytes"`
	CreatedAt time.Time `json:"created_at"`
	// Fresh is true when the drill captured it.
	Fresh bool `json:"fresh"`
}

// ReportCanary says whether the canary row came back.
type ReportCanary struct {
	// Expected is false when the restored backup predates the canary (an
	// existing backup was restored), so its absence proves nothing.
	Expected bool `json:"expected"`
	Found    bool `json:"found"`
	// FoundServing is set in full mode: the canary seen through the app
	// while the restored database served it.
	FoundServing *bool `json:"found_serving,omitempty"`
}

// Check is a preflight finding.
type Check struct {
	Name string `json:"name"`
	OK   bool   `json:"ok"`
	// Message says what was found and, when not OK, what to do.
	Message string `json:"message"`
}

// StepStatus is how a step ended.
type StepStatus string

// Step outcomes.
const (
	StatusSucceeded StepStatus = "succeeded"
	StatusFailed    StepStatus = "failed"
	StatusSkipped   StepStatus = "skipped"
)

// StepRecord is one step as it ran.
type StepRecord struct {
	Name    string     `json:"name"`
	Status  StepStatus `json:"status"`
	Seconds float64    `json:"seconds"`
	Error   string     `json:"error,omitempty"`
	Note    string     `json:"note,omitempty"`
}

// Why says in one line why the drill did not pass; empty when it passed.
// When every table matches, it says so, so that a column of "yes" under
// FAILED does not read as a contradiction.
func (r *Report) Why() string {
	why := r.Error
	if r.Result == Passed || why == "" {
		return ""
	}
	if len(r.Tables) == 0 || (len(r.SchemaDiffs) == 0 && len(r.SequencesBehind) == 0) {
		return why
	}
	for _, t := range r.Tables {
		if !t.Match {
			return why
		}
	}
	return strings.TrimSuffix(why, ".") + "; every table's rows and content match"
}

// ShowVerification reports whether the one-line verification is worth a
// line of its own: not when the error already says it.
func (r *Report) ShowVerification() bool {
	return r.Verification != "" && !strings.Contains(r.Error, r.Verification)
}
