package bot

import (
	"context"
	"fmt"
	"time"

	"github.com/restore-drill/restore-drill/drill"
)

// Job is a drill or restore asked for in Slack, as data: whichever bot
// process takes it from the queue runs it.
type Job struct {
	ID             string `json:"id"`
	Verb           string `json:"verb"`
	App            string `json:"app"`
	Mode           string `json:"mode,omitempty"`
	Backup         string `json:"backup,omitempty"`
	Into           string `json:"into,omitempty"`
	Keep           bool   `json:"keep,omitempty"`
	NoSafetyBackup bool   `json:"no_safety_backup,omitempty"`
	Force          bool   `json:"force,omitempty"`
	Requester      string `json:"requester"`
	Channel        string `json:"channel"`
	// ResponseURL is the command's, known only to the process that took
	// it: it lets anyone post in the channel for 30 minutes, so it is
	// never stored with the job.
	ResponseURL string `json:"-"`
	Scheduled   bool   `json:"scheduled,omitempty"`
	// Started is when the drill was asked for.
	Started time.Time `json:"started"`
	// ThreadTS and IncidentTS are the drill's thread and its copy in the
	// incident channel, once the process running it posted them.
	ThreadTS   string `json:"thread_ts,omitempty"`
	IncidentTS string `json:"incident_ts,omitempty"`
}

// newJob describes a drill reserved for req and cmd as a job.
func newJob(req Request, cmd Command, id string, at time.Time) Job {
	j := Job{ID: id, Verb: cmd.Verb, App: cmd.App, Mode: string(cmd.Mode), Into: cmd.Into, Keep: cmd.Keep,
		NoSafetyBackup: cmd.NoSafetyBackup, Force: cmd.Force, Requester: req.User, Channel: req.Channel,
		ResponseURL: req.ResponseURL, Scheduled: req.Scheduled, Started: at}
	if cmd.Backup.Kind != "" {
		j.Backup = cmd.Backup.String()
	}
	return j
}

// decode gives back the request and command of a job.
func (j Job) decode() (Request, Command, error) {
	req := Request{Kind: KindCommand, User: j.Requester, Channel: j.Channel, ResponseURL: j.ResponseURL, Scheduled: j.Scheduled}
	cmd := Command{Verb: j.Verb, App: j.App, Into: j.Into, Keep: j.Keep, NoSafetyBackup: j.NoSafetyBackup, Force: j.Force}
	if j.ID == "" || j.App == "" || (j.Verb != VerbRun && j.Verb != VerbRestore) {
		return req, cmd, fmt.Errorf("job %q is not a drill or restore of an app", j.ID)
	}
	if j.Mode != "" {
		m, err := drill.ParseMode(j.Mode)
		if err != nil {
			return req, cmd, err
		}
		cmd.Mode = m
	}
	if j.Backup != "" {
		b, err := drill.ParseBackupRef(j.Backup)
		if err != nil {
			return req, cmd, err
		}
		cmd.Backup, cmd.BackupSet = b, true
	}
	return req, cmd, nil
}

// view is the parent message's view of the job's drill.
func (j Job) view() drillView {
	return drillView{ID: j.ID, App: j.App, Verb: j.Verb, Requester: j.Requester, Mode: drill.Mode(j.Mode), Backup: j.Backup,
		Into: j.Into, Started: j.Started, Scheduled: j.Scheduled}
}

// Continuation takes up a drill parked on a confirmation: when someone
// answers it, and again when it expires (the first to come continues the
// drill; the other finds it no longer parked on Ticket).
type Continuation struct {
	DrillID string `json:"drill_id"`
	Ticket  string `json:"ticket"`
	// Expiry marks the continuation scheduled for the confirmation's
	// expiry.
	Expiry bool `json:"expiry,omitempty"`
}

// Queue runs drills as durable jobs shared by every bot process: each job
// runs in exactly one of them, and a drill waiting for a confirmation holds
// no worker. Without a Queue the bot runs drills in the process that got
// the command (the console).
type Queue interface {
	// Enqueue adds a drill to run at once.
	Enqueue(ctx context.Context, j Job) error
	// Continue adds c, to run at at (at once when zero).
	Continue(ctx context.Context, c Continuation, at time.Time) error
	// Settle closes the jobs of a drill that dead processes left as
	// running: all of them when the journal resumed the drill (keep
	// empty), or those that ran before the continuation of ticket keep
	// took it up.
	Settle(ctx context.Context, drillID, keep string) error
}

// JobHandler runs what a Queue hands out. *Bot implements it.
type JobHandler interface {
	RunJob(ctx context.Context, j Job) error
	ContinueJob(ctx context.Context, c Continuation) error
}
