package herokutest

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// dataTime is the data API's timestamp form (not RFC 3339).
const dataTime = "2006-01-02 15:04:05 -0700"

type transferLog struct {
	at      time.Time
	level   string
	message string
}

type transfer struct {
	uuid       string
	num        int
	app        string // the app it is listed under
	fromName   string
	fromType   string
	toName     string
	toType     string
	toURL      string
	publicURLs []string
	file       string
	created    time.Time
	started    time.Time
	finished   time.Time
	succeeded  bool
	warnings   int
	size       int64
	processed  int64
	schedule   string
	legacyName string // options.pgbackups_name of a legacy PGBackups backup
	logs       []transferLog

	canceled time.Time
	// running is true while a restore's pg_restore still writes; stop
	// ends it (a cancel), after which it is marked canceled.
	running bool
	stop    func()

	// What the transfer ends as, once stepsLeft polls have seen it run.
	stepsLeft      int
	finalSucceeded bool
	finalWarnings  int
}

func ts(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.Format(dataTime)
}

func (t *transfer) json(verbose bool) map[string]any {
	out := map[string]any{
		"uuid": t.uuid, "num": t.num, "from_name": t.fromName, "from_type": t.fromType,
		"to_name": t.toName, "to_type": t.toType, "to_url": t.toURL, "from_url": nil,
		"created_at": ts(t.created), "started_at": ts(t.started), "finished_at": ts(t.finished),
		"updated_at": ts(t.created), "canceled_at": ts(t.canceled), "deleted_at": nil, "purged_at": nil,
		"succeeded": t.succeeded, "warnings": t.warnings, "source_bytes": t.size, "processed_bytes": t.processed,
		"options": map[string]any{}, "num_keep": 25, "schedule": nil,
	}
	if t.schedule != "" {
		out["schedule"] = map[string]string{"uuid": t.schedule}
	}
	if t.legacyName != "" {
		out["options"] = map[string]any{"pgbackups_name": t.legacyName}
	}
	if verbose {
		logs := []map[string]any{}
		for _, l := range t.logs {
			logs = append(logs, map[string]any{"created_at": ts(l.at), "level": l.level, "message": l.message})
		}
		out["logs"] = logs
	}
	return out
}

// advance moves a running transfer one poll on. Called locked.
func (t *transfer) advance() {
	if !t.finished.IsZero() {
		return
	}
	if t.started.IsZero() {
		t.started = time.Now()
	}
	if t.running {
		return // a restore ends when its pg_restore does, however often polled
	}
	t.stepsLeft--
	if t.stepsLeft > 0 {
		t.processed = t.size / int64(t.stepsLeft+1)
		return
	}
	t.finished = time.Now()
	t.succeeded, t.warnings = t.finalSucceeded, t.finalWarnings
	if t.succeeded {
		t.processed = t.size
	}
}

// newTransfer numbers a transfer under app. Called locked.
func (s *Server) newTransfer(app string, t *transfer) {
	t.uuid, t.app = newID(), app
	t.num = len(s.transfers[app]) + 1
	if t.created.IsZero() {
		t.created = time.Now()
	}
	t.stepsLeft = s.cfg.TransferSteps
	s.transfers[app] = append(s.transfers[app], t)
	if t.stepsLeft <= 0 {
		t.stepsLeft = 1
		t.advance()
	}
}

// SetLegacyName makes transfer num of app a backup of the legacy PGBackups
// service, named name (the CLI shows it as "o"+name).
func (s *Server) SetLegacyName(app string, num int, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t := s.findTransfer(app, strconv.Itoa(num)); t != nil {
		t.legacyName = name
	}
}

func (s *Server) findTransfer(app, ident string) *transfer {
	for _, t := range s.transfers[app] {
		if t.uuid == ident || strconv.Itoa(t.num) == ident {
			return t
		}
	}
	return nil
}

// backup runs pg_dump -Fc of the add-on's database into the server's
// directory and records a backup transfer. A backup dated in the past is
// finished already.
func (s *Server) backup(ad *addon, at time.Time, scheduled bool) (*transfer, error) {
	file := filepath.Join(s.dir, newID()+".dump")
	s.mu.Lock()
	fail := s.captureFail
	// Heroku names a backup's source by the database's attachment:
	// DATABASE for the one that serves its app, else its own name.
	from := ""
	for _, at := range s.attachmentsOf(ad.id) {
		if at.namespace == nil && (from == "" || at.name == "DATABASE") {
			from = at.name
		}
	}
	s.mu.Unlock()
	if from == "" {
		from = "DATABASE"
	}
	t := &transfer{fromName: from, fromType: "pg_dump", toName: "BACKUP", toType: "gof3r", file: file, created: at}
	t.logs = append(t.logs, transferLog{at: time.Now(), level: "info", message: "Running pg_dump on database"})
	var stderr bytes.Buffer
	// As the database's own role, like everything Heroku runs on it.
	cmd := exec.Command("pg_dump", "-Fc", "--no-owner", "--no-acl", "-f", file, "-d", s.connString(ad))
	cmd.Env = s.pgEnv()
	cmd.Stderr = &stderr
	err := cmd.Run()
	if err == nil && fail {
		err = fmt.Errorf("injected")
		stderr.WriteString("pg_dump: error: query failed: server closed the connection unexpectedly\npg_dump: error: could not write to output file\n")
	}
	if err != nil {
		for _, l := range strings.Split(strings.TrimSpace(stderr.String()), "\n") {
			t.logs = append(t.logs, transferLog{at: time.Now(), level: "error", message: l})
		}
		t.logs = append(t.logs, transferLog{at: time.Now(), level: "error", message: "Backup failed: pg_dump exited with an error"})
	} else {
		t.finalSucceeded = true
		if fi, err := os.Stat(file); err == nil {
			t.size = fi.Size()
		}
		t.logs = append(t.logs, transferLog{at: time.Now(), level: "info", message: "pg_dump done; upload done"})
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	billing := ad.app
	s.newTransfer(billing, t)
	t.toURL = fmt.Sprintf("https://xfrtu.s3.amazonaws.com/%s/%s/backup.dump?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=%s", billing, t.uuid, randomHex(16))
	if scheduled && len(ad.schedules) > 0 {
		t.schedule = ad.schedules[0].UUID
	}
	if at.Before(time.Now().Add(-time.Minute)) {
		t.started, t.finished = at, at.Add(30*time.Second)
		t.succeeded, t.processed, t.stepsLeft = t.finalSucceeded, t.size, 0
	}
	return t, nil
}

// connString is the libpq connection string of the add-on's database as
// its own role.
func (s *Server) connString(ad *addon) string {
	host := s.admin.Host
	port := s.admin.Port
	if port == 0 {
		port = 5432
	}
	return fmt.Sprintf("host=%s port=%d user=%s dbname=%s", host, port, ad.user, ad.dbname)
}

func (s *Server) pgEnv() []string {
	env := os.Environ()
	if s.admin.Password != "" {
		env = append(env, "PGPASSWORD="+s.admin.Password)
	}
	return env
}

// withTransfer answers a request about the transfer in its path, under the
// server's lock, or 404 when there is no such transfer.
func (s *Server) withTransfer(answer func(w http.ResponseWriter, r *http.Request, t *transfer)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		t := s.findTransfer(r.PathValue("app"), r.PathValue("num"))
		if t == nil {
			writeError(w, http.StatusNotFound, "not_found", "Couldn't find that transfer.")
			return
		}
		answer(w, r, t)
	}
}

func (s *Server) dataRoutes(mux *http.ServeMux) {
	notFoundDB := func(w http.ResponseWriter) {
		writeError(w, http.StatusNotFound, "not_found", "Couldn't find that database.")
	}
	// ready finds a provisioned add-on; a provisioning one is a 404, as on
	// Heroku, and so is one of the Advanced tier, which only
	// /data/postgres/v1 serves. Called locked.
	ready := func(w http.ResponseWriter, ident string) *addon {
		ad := s.findAddon(ident)
		if ad == nil || ad.state != "provisioned" || ad.advanced() {
			notFoundDB(w)
			return nil
		}
		return ad
	}
	mux.HandleFunc("GET /client/v11/databases/{db}/wait_status", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		ad := ready(w, r.PathValue("db"))
		if ad == nil {
			return
		}
		if ad.waitPolls > 0 {
			ad.waitPolls--
			notFoundDB(w)
			return
		}
		if ad.waitingPolls > 0 {
			// Provisioned, not yet available: Heroku says so for a while.
			ad.waitingPolls--
			writeJSON(w, http.StatusOK, map[string]any{"waiting?": true, "message": "pending", "error?": false})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"waiting?": false, "message": "Available", "error?": false})
	})
	mux.HandleFunc("GET /client/v11/databases/{db}", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		ad := ready(w, r.PathValue("db"))
		if ad == nil || ad.waitPolls > 0 {
			if ad != nil {
				notFoundDB(w)
			}
			return
		}
		plan := any(ad.plan) // a string on multi-tenant plans
		protection := "Off"
		if !strings.HasPrefix(ad.plan, "essential") && ad.plan != "mini" && ad.plan != "basic" {
			plan = map[string]string{"id": "plan-" + ad.plan, "name": ad.plan}
			protection = "On" // Standard and up: physical backups, WAL archiving
		}
		var following, leader any
		if ad.following != "" {
			following, leader = "postgres://"+ad.following+".example.com:5432/db", ad.following
		}
		writeJSON(w, http.StatusOK, map[string]any{
			"addon_id": ad.id, "name": ad.name, "database_name": ad.dbname, "database_user": ad.user,
			"created_at": ts(ad.created), "num_bytes": 8 << 20, "num_tables": 0, "num_connections": 1,
			"postgres_version": "15.20", "resource_url": "", "following": following, "leader": leader, "forked_from": nil,
			"waiting?": false, "hot_standby?": false, "plan": plan,
			"info": []map[string]any{{"name": "Plan", "values": []string{ad.plan}}, {"name": "Status", "values": []string{"Available"}},
				{"name": "Continuous Protection", "values": []string{protection}}},
		})
	})
	mux.HandleFunc("GET /client/v11/databases/{db}/transfer-schedules", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		ad := ready(w, r.PathValue("db"))
		if ad == nil {
			return
		}
		out := append([]Schedule{}, ad.schedules...)
		writeJSON(w, http.StatusOK, out)
	})
	// POST transfer-schedules upserts the database's schedule, as
	// pg:backups:schedule does.
	mux.HandleFunc("POST /client/v11/databases/{db}/transfer-schedules", func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Hour         any    `json:"hour"`
			Timezone     string `json:"timezone"`
			ScheduleName string `json:"schedule_name"`
		}
		if err := readJSON(r, &body); err != nil {
			writeError(w, http.StatusUnprocessableEntity, "invalid_params", "Invalid schedule.")
			return
		}
		hour, err := strconv.Atoi(fmt.Sprint(body.Hour))
		if err != nil || hour < 0 || hour > 23 || body.Timezone == "" {
			writeError(w, http.StatusUnprocessableEntity, "invalid_params", "Hour must be 0 to 23 and a timezone is required.")
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		ad := ready(w, r.PathValue("db"))
		if ad == nil {
			return
		}
		if body.ScheduleName == "" {
			writeError(w, http.StatusUnprocessableEntity, "invalid_params", "A schedule_name is required: the config var of the attachment to back up, such as DATABASE_URL.")
			return
		}
		// One schedule per name: a POST of a known name replaces it.
		sc := Schedule{UUID: newID(), Name: body.ScheduleName, Hour: hour, Timezone: body.Timezone}
		kept := []Schedule{}
		for _, o := range ad.schedules {
			if o.Name != sc.Name {
				kept = append(kept, o)
			}
		}
		ad.schedules = append(kept, sc)
		writeJSON(w, http.StatusCreated, sc)
	})
	mux.HandleFunc("POST /client/v11/databases/{db}/backups", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		ad := ready(w, r.PathValue("db"))
		s.mu.Unlock()
		if ad == nil {
			return
		}
		t, err := s.backup(ad, time.Now(), false)
		if err != nil {
			writeError(w, http.StatusInternalServerError, "internal_server_error", "Internal server error.")
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		writeJSON(w, http.StatusCreated, t.json(false))
	})
	mux.HandleFunc("GET /client/v11/apps/{app}/transfers", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.findApp(r.PathValue("app")) == nil {
			notFoundApp(w)
			return
		}
		out := []map[string]any{}
		for _, t := range s.transfers[r.PathValue("app")] {
			out = append(out, t.json(false))
		}
		writeJSON(w, http.StatusOK, out)
	})
	mux.HandleFunc("GET /client/v11/apps/{app}/transfers/{num}", s.withTransfer(func(w http.ResponseWriter, r *http.Request, t *transfer) {
		t.advance()
		writeJSON(w, http.StatusOK, t.json(r.URL.Query().Get("verbose") == "true"))
	}))
	// cancel stops a transfer still running (pg:backups:cancel). It is
	// addressed by uuid (heroku-api.md §2.2), not by number.
	mux.HandleFunc("POST /client/v11/apps/{app}/transfers/{num}/actions/cancel", s.withTransfer(func(w http.ResponseWriter, r *http.Request, t *transfer) {
		if r.PathValue("num") != t.uuid {
			writeError(w, http.StatusNotFound, "not_found", "Couldn't find that transfer.")
			return
		}
		switch {
		case t.running:
			t.stop() // marked canceled once its pg_restore has stopped
		case t.finished.IsZero():
			now := time.Now()
			t.canceled, t.finished, t.succeeded, t.stepsLeft = now, now, false, 0
		}
		writeJSON(w, http.StatusOK, t.json(false))
	}))
	mux.HandleFunc("POST /client/v11/apps/{app}/transfers/{num}/actions/public-url", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		t := s.findTransfer(r.PathValue("app"), r.PathValue("num"))
		if t == nil || t.file == "" {
			writeError(w, http.StatusNotFound, "not_found", "Couldn't find that transfer.")
			return
		}
		u := fmt.Sprintf("https://xfrtu.s3.amazonaws.com/%s/%s/backup.dump?X-Amz-Expires=3600&X-Amz-Signature=%s", t.app, t.uuid, randomHex(16))
		t.publicURLs = append(t.publicURLs, u)
		writeJSON(w, http.StatusOK, map[string]string{"url": u, "expires_at": ts(time.Now().Add(time.Hour)).(string)})
	})
	mux.HandleFunc("POST /client/v11/databases/{db}/restores", s.restore)
	s.advancedRoutes(mux)
}

// advancedRoutes are the few /data/postgres/v1 endpoints of Advanced-tier
// databases (what `heroku data:pg:*` calls): readiness is "waiting", not
// "waiting?". Classic databases are not served here.
func (s *Server) advancedRoutes(mux *http.ServeMux) {
	advanced := func(w http.ResponseWriter, ident string) *addon {
		ad := s.findAddon(ident)
		if ad == nil || !ad.advanced() {
			writeError(w, http.StatusNotFound, "not_found", "Couldn't find that database.")
			return nil
		}
		return ad
	}
	mux.HandleFunc("GET /data/postgres/v1/{db}/wait_status", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		if advanced(w, r.PathValue("db")) != nil {
			writeJSON(w, http.StatusOK, map[string]any{"waiting": false, "message": "available"})
		}
	})
	mux.HandleFunc("GET /data/postgres/v1/{db}/info", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		if ad := advanced(w, r.PathValue("db")); ad != nil {
			writeJSON(w, http.StatusOK, map[string]any{
				"addon": ref{ID: ad.id, Name: ad.name}, "plan": ad.plan, "status": "available",
				"pools": []map[string]any{{"name": "leader", "expected_level": "4G-Performance", "status": "available"}},
			})
		}
	})
}

// restore runs pg_restore of the backup behind backup_url into the target
// add-on's database. pg_restore exiting 1 (errors it skipped) is what
// Heroku reports as succeeded with warnings.
func (s *Server) restore(w http.ResponseWriter, r *http.Request) {
	var body struct {
		BackupURL string `json:"backup_url"`
	}
	if err := readJSON(r, &body); err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", "Invalid JSON.")
		return
	}
	s.mu.Lock()
	ad := s.findAddon(r.PathValue("db"))
	if ad == nil || ad.state != "provisioned" || ad.waitPolls > 0 {
		s.mu.Unlock()
		writeError(w, http.StatusNotFound, "not_found", "Couldn't find that database.")
		return
	}
	var src *transfer
	for _, list := range s.transfers {
		for _, t := range list {
			if t.file != "" && body.BackupURL != "" && (t.toURL == body.BackupURL || contains(t.publicURLs, body.BackupURL)) {
				src = t
			}
		}
	}
	target := s.restoreTarget(ad)
	s.mu.Unlock()
	if src == nil || !src.succeeded {
		// Heroku takes any URL and fails later, in the transfer.
		writeJSON(w, http.StatusCreated, s.failedRestore(ad, target))
		return
	}
	created, done := s.launchRestore(ad, src)
	// The answer waits for the work (so a test's few polls see it done),
	// unless the client goes away: the restore goes on without it.
	select {
	case <-done:
	case <-r.Context().Done():
		return
	}
	writeJSON(w, http.StatusCreated, created)
}

// restoreTarget names add-on ad in a restore transfer as Heroku does: its
// attachment on its own app, else any. Called locked.
func (s *Server) restoreTarget(ad *addon) string {
	target := ""
	for _, at := range s.attachmentsOf(ad.id) {
		if at.namespace == nil && (target == "" || at.app == ad.app) {
			target = at.name
		}
	}
	return target
}

// launchRestore lists a restore of backup src onto add-on ad and runs it
// in the background, as Heroku does: a client that goes away does not stop
// it, a cancel does. It returns the transfer as created, and a channel
// closed when the restore has ended. Called unlocked.
func (s *Server) launchRestore(ad *addon, src *transfer) (map[string]any, <-chan struct{}) {
	s.mu.Lock()
	warn, delay := s.warnings, s.restoreDelay
	target := s.restoreTarget(ad)
	ctx, stop := context.WithCancel(context.Background())
	t := &transfer{fromName: "BACKUP", fromType: "htcat", toName: target, toType: "pg_restore", size: src.size, running: true, stop: stop}
	t.logs = append(t.logs, transferLog{at: time.Now(), level: "info", message: "Running pg_restore on database"})
	s.newTransfer(ad.app, t)
	created := t.json(false)
	s.mu.Unlock()
	done := make(chan struct{})
	s.restores.Go(func() {
		defer close(done)
		select {
		case <-time.After(delay):
		case <-ctx.Done():
		}
		s.runRestore(ctx, t, ad, src.file, warn)
	})
	return created, done
}

// StartRestore starts a restore of app's backup number num onto its
// DATABASE, as a client that then went away would (a process killed while
// it watched): it goes on in the background until it ends or is cancelled.
func (s *Server) StartRestore(app string, num int) error {
	s.mu.Lock()
	var ad *addon
	if at := s.attachmentNamed(app, "DATABASE"); at != nil {
		ad = s.addons[at.addon]
	}
	src := s.findTransfer(app, strconv.Itoa(num))
	s.mu.Unlock()
	if ad == nil || src == nil || src.file == "" {
		return fmt.Errorf("no DATABASE or no backup %d on %s", num, app)
	}
	s.launchRestore(ad, src)
	return nil
}

// SlowRestores makes every restore wait d before it starts writing.
func (s *Server) SlowRestores(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.restoreDelay = d
}

// WaitRestores waits until no restore runs in the background.
func (s *Server) WaitRestores() { s.restores.Wait() }

// runRestore overwrites ad's database with the dump in file (Heroku's
// restore drops whatever the target held) and ends transfer t with the
// outcome. Heroku restores without owners or grants, as the target
// database's own role, which is no superuser: code in the backup (CHECK
// and index functions…) runs with that role's privileges only.
func (s *Server) runRestore(ctx context.Context, t *transfer, ad *addon, file string, warn bool) {
	var stderr bytes.Buffer
	err := ctx.Err()
	if err == nil {
		err = s.resetDatabase(ad)
	}
	if err == nil {
		cmd := exec.CommandContext(ctx, "pg_restore", "--no-owner", "--no-acl", "-d", s.connString(ad), file)
		cmd.Env = s.pgEnv()
		cmd.Stderr = &stderr
		err = cmd.Run()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t.running = false
	if ctx.Err() != nil {
		now := time.Now()
		t.canceled, t.finished, t.succeeded, t.stepsLeft = now, now, false, 0
		return
	}
	t.stop()
	for _, l := range strings.Split(strings.TrimSpace(stderr.String()), "\n") {
		if l != "" {
			t.logs = append(t.logs, transferLog{at: time.Now(), level: "warning", message: l})
		}
	}
	if warn {
		t.logs = append(t.logs,
			transferLog{at: time.Now(), level: "warning", message: `pg_restore: error: could not execute query: ERROR:  extension "pg_stat_statements" is not available`},
			transferLog{at: time.Now(), level: "warning", message: "pg_restore: warning: errors ignored on restore: 1"})
		t.finalWarnings = 1
	}
	switch ee, _ := err.(*exec.ExitError); {
	case err == nil:
		t.finalSucceeded = true
	case ee != nil && ee.ExitCode() == 1:
		t.finalSucceeded = true
		t.finalWarnings = max(t.finalWarnings, strings.Count(stderr.String(), "error:"), 1)
	default:
		t.logs = append(t.logs, transferLog{at: time.Now(), level: "error", message: "Restore failed: pg_restore exited with an error"})
	}
	if s.cfg.TransferSteps <= 0 {
		t.advance() // transfers finish at once: as soon as the work is done
	}
}

// failedRestore records a restore whose backup could not be downloaded: it
// runs, then fails with the download's error in its logs. It returns the
// transfer as created.
func (s *Server) failedRestore(ad *addon, target string) map[string]any {
	now := time.Now()
	t := &transfer{fromName: "BACKUP", fromType: "htcat", toName: target, toType: "pg_restore"}
	t.logs = append(t.logs,
		transferLog{at: now, level: "info", message: "Downloading backup"},
		transferLog{at: now, level: "error", message: "htcat: GET backup_url: 403 Forbidden"},
		transferLog{at: now, level: "error", message: "Restore failed: could not download the backup"})
	s.mu.Lock()
	defer s.mu.Unlock()
	s.newTransfer(ad.app, t)
	return t.json(false)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
