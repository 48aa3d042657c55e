package localpg

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/restore-drill/restore-drill/drill"
)

// toolError is a pg_dump or pg_restore that exited non-zero.
type toolError struct {
	tool   string
	code   int
	errors []string // the tool's "error:" lines, redacted
	tail   []string // its last lines, redacted
}

func (e *toolError) Error() string {
	return fmt.Sprintf("%s exited with status %d: %s", e.tool, e.code, strings.Join(e.summary(), "; "))
}

func (e *toolError) summary() []string {
	lines := e.errors
	if len(lines) == 0 {
		lines = e.tail
	}
	if len(lines) > 5 {
		lines = append(lines[:5:5], fmt.Sprintf("… and %d more", len(lines)-5))
	}
	return lines
}

// toolMessage is the short form of a tool failure for people.
func toolMessage(err error) string {
	var te *toolError
	if errors.As(err, &te) {
		return strings.Join(te.summary(), "; ")
	}
	return err.Error()
}

// env returns the environment for pg_dump and pg_restore: the connection
// settings travel in PG* variables, so no password ever appears on a
// command line.
func (p *Provider) env() []string {
	s := p.cfg.Server
	env := os.Environ()
	env = append(env,
		"PGHOST="+s.Host,
		"PGPORT="+strconv.Itoa(int(s.Port)),
		"PGUSER="+s.User,
		"PGCONNECT_TIMEOUT=10",
	)
	if s.Password != "" {
		env = append(env, "PGPASSWORD="+s.Password)
	}
	switch {
	case s.TLSConfig == nil:
		env = append(env, "PGSSLMODE=disable")
	case len(s.Fallbacks) == 0:
		env = append(env, "PGSSLMODE=require")
	}
	return env
}

// runTool runs a Postgres client tool. Each stderr line goes to onLine (if
// set); the error lines and the last lines are kept for the error.
func (p *Provider) runTool(ctx context.Context, bin string, onLine func(string), args ...string) ([]byte, error) {
	return p.runToolWatched(ctx, bin, onLine, nil, args...)
}

// runToolWatched is runTool with watch (if set) running beside the tool,
// given its pid. watch's context ends when the tool has exited and before
// it is reaped (so its pid cannot be reused meanwhile), and
// runToolWatched returns only after watch has.
func (p *Provider) runToolWatched(ctx context.Context, bin string, onLine func(string), watch func(ctx context.Context, pid int), args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(p.env(), "PGAPPNAME="+appName(ctx))
	dieWithParent(cmd)
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		if errors.Is(err, exec.ErrNotFound) || errors.Is(err, fs.ErrNotExist) {
			return nil, drill.Wrap(drill.ECONFIG, err, "%s is not installed (not found on PATH): install the PostgreSQL client tools of the server's major version, e.g. apt-get install postgresql-client", bin)
		}
		return nil, drill.Wrap(drill.ECONFIG, err, "cannot run %s", bin)
	}
	stopWatch := func() {}
	if watch != nil {
		wctx, cancel := context.WithCancel(ctx)
		watched := make(chan struct{})
		go func() {
			defer close(watched)
			watch(wctx, cmd.Process.Pid)
		}()
		stopWatch = func() { cancel(); <-watched }
	}
	te := &toolError{tool: bin}
	sc := bufio.NewScanner(stderr)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := p.redactor.Redact(sc.Text())
		if onLine != nil {
			onLine(line)
		}
		if strings.Contains(line, "error:") || strings.Contains(line, "FATAL:") {
			te.errors = append(te.errors, line)
		}
		te.tail = append(te.tail, line)
		if len(te.tail) > 10 {
			te.tail = te.tail[1:]
		}
	}
	_, _ = io.Copy(io.Discard, stderr)
	stopWatch()
	if err := cmd.Wait(); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			te.code = exit.ExitCode()
			return stdout.Bytes(), te
		}
		return nil, err
	}
	return stdout.Bytes(), nil
}

var versionPattern = regexp.MustCompile(`\(PostgreSQL\) ([0-9]+)`)

// checkTools makes sure pg_dump and pg_restore exist and are not of an older
// major version than the server: pg_dump refuses a newer server, and
// pg_restore cannot read archives from a newer pg_dump.
func (p *Provider) checkTools(ctx context.Context, conn *pgx.Conn) error {
	var num int
	if err := conn.QueryRow(ctx, `SELECT current_setting('server_version_num')::int`).Scan(&num); err != nil {
		return p.interpret(err, "")
	}
	server := num / 10000
	for _, bin := range []string{p.cfg.PgDump, p.cfg.PgRestore} {
		out, err := p.runTool(ctx, bin, nil, "--version")
		if err != nil {
			return err
		}
		m := versionPattern.FindSubmatch(out)
		if m == nil {
			return drill.Errorf(drill.ECONFIG, "cannot tell the version of %s from %q", bin, strings.TrimSpace(string(out)))
		}
		major, _ := strconv.Atoi(string(m[1]))
		if major < server {
			return drill.Errorf(drill.ECONFIG, "%s is version %d, older than the server's %d: install postgresql-client-%d and put it first on PATH", bin, major, server, server)
		}
	}
	return nil
}
