package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/kelseyhightower/envconfig"

	"github.com/restore-drill/restore-drill/drill"
	"github.com/restore-drill/restore-drill/drill/heroku"
	"github.com/restore-drill/restore-drill/drill/localpg"
)

// Exit codes, which scripts rely on.
const (
	exitPassed = 0
	exitFailed = 1 // the drill ran and failed
	exitUsage  = 2 // bad usage or configuration; nothing was changed
)

// IO is the terminal the command talks to.
type IO struct {
	In  io.Reader
	Out io.Writer
	Err io.Writer
	// InteractiveIn is true when In is a terminal a person types into.
	InteractiveIn bool
	// JSON is true when the command line asks for JSON (--json): then a
	// failure prints a JSON object on Out too, so that a script never
	// parses empty output.
	JSON bool
}

// wantsJSON reports whether args ask for JSON output: --json, or the
// report command's --format json.
func wantsJSON(args []string) bool {
	for i, a := range args {
		switch {
		case a == "--":
			return false
		case a == "--json" || a == "-json" || a == "--format=json" || a == "-format=json":
			return true
		case (a == "--format" || a == "-format") && i+1 < len(args) && args[i+1] == "json":
			return true
		}
	}
	return false
}

// Config is read from the environment with envconfig.
type Config struct {
	Provider         string        `envconfig:"DRILL_PROVIDER" default:"local"`
	LocalPostgresURL string        `envconfig:"LOCAL_POSTGRES_URL"`
	BackupDir        string        `envconfig:"BACKUP_DIR"`
	MaxBackupAge     time.Duration `envconfig:"DRILL_MAX_BACKUP_AGE" default:"26h"`
	RestoreJobs      int           `envconfig:"DRILL_RESTORE_JOBS" default:"2"`
	LogLevel         string        `envconfig:"LOG_LEVEL" default:"none"`
	// The Heroku provider: HEROKU_API_KEY is required by it alone.
	HerokuAPIKey     string `envconfig:"HEROKU_API_KEY"`
	HerokuAPIURL     string `envconfig:"HEROKU_API_URL" default:"https://api.heroku.com"`
	HerokuDataAPIURL string `envconfig:"HEROKU_DATA_API_URL" default:"https://api.data.heroku.com"`
	SandboxApp       string `envconfig:"DRILL_SANDBOX_APP"`
	ScratchPlan      string `envconfig:"DRILL_SCRATCH_PLAN"`
	// DatabaseURL is the state database; without it, a restore_drill
	// database on the local server.
	DatabaseURL string `envconfig:"DATABASE_URL"`
	// The Slack bot (restore-drill bot): see bot.go.
	SlackAppToken   string        `envconfig:"SLACK_APP_TOKEN"`
	SlackBotToken   string        `envconfig:"SLACK_BOT_TOKEN"`
	SlackAPIURL     string        `envconfig:"SLACK_API_URL" default:"https://slack.com/api/"`
	TwoPerson       bool          `envconfig:"DRILL_TWO_PERSON"`
	ConfirmTimeout  time.Duration `envconfig:"DRILL_CONFIRM_TIMEOUT" default:"10m"`
	AllowedUsers    []string      `envconfig:"DRILL_ALLOWED_USERS"`
	AdminGroup      string        `envconfig:"DRILL_ADMIN_GROUP"`
	AllowAnyone     bool          `envconfig:"DRILL_ALLOW_ANYONE"`
	AllowedChannels []string      `envconfig:"DRILL_ALLOWED_CHANNELS"`
	Apps            []string      `envconfig:"DRILL_APPS"`
	// IncidentChannel gets the bot's health alerts (DRILL_INCIDENT_CHANNEL).
	IncidentChannel string `envconfig:"DRILL_INCIDENT_CHANNEL"`
}

const usage = `restore-drill proves that a Postgres database can be restored from its backups.

Commands:
  ` + runUsage + `
      Run a drill: provision a scratch database, capture (or pick) a backup,
      restore it, compare checksums, and in full mode promote and promote back.
      Exit 0 passed, 1 failed, 2 bad usage or configuration.
  ` + planUsage + `
      Say what a drill would do, which backup and how old, what changes; changes nothing.
  ` + backupsUsage + `
      List backups, schedules and the age of the newest successful one (RPO).
  ` + restoreUsage + `
      Emergency restore: plan, typed confirmation, safety backup, restore into a new
      database promoted after a second confirmation (default) or in place.
  ` + captureUsage + `
      Take a backup now (before a risky migration).
  ` + resumeUsage + `
      Finish or undo every drill a dead process left unfinished, and say what was done.
  ` + historyUsage + `
      The last drills of an app: result, RTO, RPO, tables, who confirmed; --png draws the trend.
  ` + reportUsage + `
      One drill's full evidence for auditors.
  ` + freezeUsage + `
      Stop every new drill and restore during an incident (a restore with --force still runs).

Configuration (environment): DRILL_PROVIDER (local), LOCAL_POSTGRES_URL (libpq
defaults), BACKUP_DIR (~/.local/state/restore-drill/backups), DRILL_MAX_BACKUP_AGE (26h).
Heroku (--provider heroku): HEROKU_API_KEY (required), HEROKU_API_URL,
HEROKU_DATA_API_URL, DRILL_SANDBOX_APP (bill scratch databases to this app),
DRILL_SCRATCH_PLAN (the production database's plan).
`

// Main runs the command line args and returns the exit code.
func Main(ctx context.Context, args []string, tio IO) int {
	redactor := drill.NewRedactor()
	tio.JSON = wantsJSON(args)
	fail := failer(tio, redactor, false)
	if len(args) == 0 {
		fmt.Fprint(tio.Err, usage)
		return exitUsage
	}
	var cfg Config
	if err := envconfig.Process("", &cfg); err != nil {
		return fail(envError(err))
	}
	if err := checkAccessVars(os.LookupEnv); err != nil {
		return fail(err)
	}
	logger := newLogger(tio.Err, cfg.LogLevel, redactor)
	switch args[0] {
	case "help", "-h", "--help":
		fmt.Fprint(tio.Out, usage)
		return exitPassed
	case "bot":
		return botCommand(ctx, cfg, args[1:], tio, redactor)
	case "console":
		return consoleCommand(ctx, cfg, args[1:], tio, logger, redactor)
	case "manifest":
		return manifestCommand(args[1:], tio)
	case "run":
		a, err := parseRunArgs(args[1:])
		if err != nil {
			return fail(err)
		}
		return runCommand(ctx, cfg, a, tio, logger, redactor)
	case "restore":
		a, err := parseRestoreArgs(args[1:])
		if err != nil {
			return fail(err)
		}
		return restoreCommand(ctx, cfg, a, tio, logger, redactor)
	case "plan":
		a, err := parsePlanArgs(args[1:])
		if err != nil {
			return fail(err)
		}
		return planCommand(ctx, cfg, a, tio, logger, redactor)
	case "capture":
		a, err := parseCaptureArgs(args[1:])
		if err != nil {
			return fail(err)
		}
		return captureCommand(ctx, cfg, a, tio, logger, redactor)
	case "resume", "history", "report", "freeze", "unfreeze":
		return stateCommand(ctx, cfg, args[0], args[1:], tio, logger, redactor)
	case "backups":
		a, err := parseBackupsArgs(args[1:])
		if err != nil {
			return fail(err)
		}
		p, err := newProvider(cfg, a.provider, logger, redactor)
		if err != nil {
			return fail(err)
		}
		if err := p.CheckAppName(a.app); err != nil {
			return fail(err)
		}
		list, err := p.Backups(ctx, a.app)
		if err != nil {
			return fail(err)
		}
		if a.json {
			return writeJSON(tio.Out, backupsJSON(list, time.Now()), fail)
		}
		printBackups(tio.Out, list, time.Now())
		return exitPassed
	}
	return fail(drill.Errorf(drill.EINVALID, "unknown command %q: run `restore-drill help` for the commands", clip(args[0])))
}

// failer returns what commands call on failure: it prints err in one
// sentence, credentials removed, and returns the exit code: 2 for bad usage
// or configuration, else 1. With setup, nothing has run yet, so every
// failure is 2.
func failer(tio IO, redactor *drill.Redactor, setup bool) func(error) int {
	return func(err error) int {
		msg := redactor.Redact(message(err))
		fmt.Fprintln(tio.Err, "restore-drill: "+msg)
		code := exitFailed
		if setup || drill.IsUsage(err) {
			code = exitUsage
		}
		if tio.JSON {
			_ = json.NewEncoder(tio.Out).Encode(struct {
				Result   string `json:"result"`
				Error    string `json:"error"`
				ExitCode int    `json:"exit_code"`
			}{"error", msg, code})
		}
		return code
	}
}

// message is what a person reads for err: the drill message, or the
// redacted error text for anything unrecognised.
func message(err error) string {
	if drill.ErrorCode(err) == drill.EINTERNAL {
		return err.Error()
	}
	return drill.ErrorMessage(err)
}

func newLogger(w io.Writer, level string, redactor *drill.Redactor) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return slog.New(slog.DiscardHandler) // LOG_LEVEL=none: the printer says it all
	}
	opts := &slog.HandlerOptions{Level: l}
	var h slog.Handler = slog.NewTextHandler(w, opts)
	if os.Getenv("DYNO") != "" || os.Getenv("LOG_FORMAT") == "json" {
		h = slog.NewJSONHandler(w, opts) // Heroku's log drains parse JSON lines
	}
	return slog.New(redactingHandler{h, redactor})
}

// newProvider builds the provider named (or the configured default).
func newProvider(cfg Config, name string, logger *slog.Logger, redactor *drill.Redactor) (drill.Provider, error) {
	if name == "" {
		name = cfg.Provider
	}
	switch name {
	case "local":
		server, err := pgx.ParseConfig(cfg.LocalPostgresURL)
		if err != nil {
			return nil, drill.Errorf(drill.ECONFIG, "LOCAL_POSTGRES_URL is not a valid Postgres URL or connection string: %s", redactor.Redact(err.Error()))
		}
		redactor.AddSecret(server.Password)
		dir := cfg.BackupDir
		if dir == "" {
			dir = defaultBackupDir()
		}
		return localpg.New(localpg.Config{Server: server, BackupDir: dir, Jobs: cfg.RestoreJobs, Logger: logger})
	case "heroku":
		redactor.AddSecret(cfg.HerokuAPIKey)
		return heroku.New(heroku.Config{
			APIKey: cfg.HerokuAPIKey, APIURL: cfg.HerokuAPIURL, DataAPIURL: cfg.HerokuDataAPIURL,
			SandboxApp: cfg.SandboxApp, ScratchPlan: cfg.ScratchPlan, Logger: logger,
		})
	}
	return nil, drill.Errorf(drill.ECONFIG, "DRILL_PROVIDER=%q is not a provider: use local or heroku", clip(name))
}

func defaultBackupDir() string {
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "restore-drill", "backups")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".local", "state", "restore-drill", "backups")
	}
	return filepath.Join(os.TempDir(), "restore-drill", "backups")
}

// appProvider builds the provider named and checks the app's name on it.
func appProvider(cfg Config, name, app string, logger *slog.Logger, redactor *drill.Redactor) (drill.Provider, error) {
	p, err := newProvider(cfg, name, logger, redactor)
	if err != nil {
		return nil, err
	}
	return p, p.CheckAppName(app)
}

// terminalRunner opens the journal (undoing what dead processes left) and
// returns the runner of a drill or restore typed on this terminal.
func terminalRunner(ctx context.Context, cfg Config, p drill.Provider, confirm string, tio IO, logger *slog.Logger, redactor *drill.Redactor) (*drill.Runner, func(), error) {
	store, closeState, err := openJournal(ctx, cfg, p, tio, logger, redactor)
	if err != nil {
		return nil, nil, err
	}
	return &drill.Runner{
		Journal:      store,
		History:      store,
		Provider:     p,
		Confirmer:    &terminalConfirmer{in: tio.In, out: tio.Err, interactive: tio.InteractiveIn, preset: confirm, user: currentUser()},
		Sink:         newPrinter(tio.Err),
		Logger:       logger,
		Redactor:     redactor,
		MaxBackupAge: cfg.MaxBackupAge,
	}, closeState, nil
}

// outcome prints the report, as JSON or for people, and returns the exit
// code.
func outcome(tio IO, rep *drill.Report, err error, asJSON bool, fail func(error) int) int {
	if asJSON {
		if code := writeJSON(tio.Out, rep, fail); code != exitPassed {
			return code
		}
	} else {
		printReport(tio.Out, rep)
	}
	return exitCode(rep, err)
}

func runCommand(ctx context.Context, cfg Config, a runArgs, tio IO, logger *slog.Logger, redactor *drill.Redactor) int {
	fail := failer(tio, redactor, true)
	p, err := appProvider(cfg, a.provider, a.opts.App, logger, redactor)
	if err != nil {
		return fail(err)
	}
	if a.confirm != "" && a.confirm != a.opts.App {
		return fail(drill.Errorf(drill.EINVALID, "--confirm %s does not match the app %s: pass --confirm %s", clip(a.confirm), a.opts.App, a.opts.App))
	}
	if a.opts.Mode == drill.ModeFull && a.confirm == "" && !tio.InteractiveIn {
		return fail(drill.Errorf(drill.EINVALID, "full mode needs typed confirmations and there is no terminal to ask: run it in a terminal or pass --confirm %s", a.opts.App))
	}
	runner, closeState, err := terminalRunner(ctx, cfg, p, a.confirm, tio, logger, redactor)
	if err != nil {
		return fail(err)
	}
	defer closeState()
	a.opts.Requester = currentUser()
	rep, err := runner.Run(ctx, a.opts)
	return outcome(tio, rep, err, a.json, fail)
}

// exitCode is 0 for a passed drill, 2 when bad input or configuration
// stopped it before it changed anything, 1 otherwise.
func exitCode(rep *drill.Report, err error) int {
	if err == nil {
		return exitPassed
	}
	if drill.IsUsage(err) {
		changed := false
		for _, s := range rep.Steps {
			if s.Name != drill.StepPreflight && s.Status != drill.StatusSkipped {
				changed = true
			}
		}
		if !changed {
			return exitUsage
		}
	}
	return exitFailed
}

func writeJSON(w io.Writer, v any, fail func(error) int) int {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fail(drill.Wrap(drill.EINTERNAL, err, "cannot write the JSON report"))
	}
	return exitPassed
}

func currentUser() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	return "unknown"
}

// terminalConfirmer asks for typed confirmations on the terminal, or takes
// the text given with --confirm (the heroku CLI's convention).
type terminalConfirmer struct {
	in          io.Reader
	out         io.Writer
	interactive bool
	preset      string
	user        string
	lines       chan string
}

func (c *terminalConfirmer) Confirm(ctx context.Context, req drill.ConfirmRequest) (drill.Confirmation, error) {
	fmt.Fprintf(c.out, "\n !    WARNING: Destructive action: %s\n", req.Action)
	for _, l := range req.Plan {
		fmt.Fprintf(c.out, " !    %s\n", l)
	}
	if c.preset != "" {
		fmt.Fprintf(c.out, " !    Confirmed with --confirm %s\n\n", c.preset)
		return drill.Confirmation{User: c.user, Typed: c.preset, At: time.Now().UTC()}, nil
	}
	if !c.interactive {
		return drill.Confirmation{}, drill.Errorf(drill.EREFUSED, "there is no terminal to type the confirmation on: pass --confirm %s", req.Expect)
	}
	fmt.Fprintf(c.out, " !    To proceed, type %q or re-run this command with --confirm %s\n\n> ", req.Expect, req.Expect)
	if c.lines == nil {
		c.lines = make(chan string)
		go readLines(c.in, c.lines)
	}
	select {
	case <-ctx.Done():
		return drill.Confirmation{}, ctx.Err()
	case line, ok := <-c.lines:
		if !ok {
			return drill.Confirmation{}, drill.Errorf(drill.EREFUSED, "the terminal closed before a confirmation was typed")
		}
		return drill.Confirmation{User: c.user, Typed: strings.TrimSpace(line), At: time.Now().UTC()}, nil
	}
}

func readLines(r io.Reader, out chan<- string) {
	defer close(out)
	buf := make([]byte, 0, 256)
	one := make([]byte, 1)
	for {
		n, err := r.Read(one)
		if n == 1 {
			if one[0] == '\n' {
				out <- string(buf)
				buf = buf[:0]
				continue
			}
			if len(buf) < 4096 {
				buf = append(buf, one[0])
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) && len(buf) > 0 {
				out <- string(buf)
			}
			return
		}
	}
}
