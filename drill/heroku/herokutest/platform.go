package herokutest

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

type app struct {
	id, name    string
	maintenance bool
	generation  string
	formation   map[string]int
	formIDs     map[string]string
	created     time.Time
	configVars  map[string]string
	releases    []*release
}

type addon struct {
	id, name, plan string
	app            string // billing app
	state          string
	provPolls      int // reads left before provisioned
	waitPolls      int // wait_status 404s left
	waitingPolls   int // wait_status "waiting?": true left, after the 404s
	dbname         string
	user           string // its own unprivileged role, the database's owner
	password       string
	created        time.Time
	schedules      []Schedule
	following      string // the leader's name, for a follower
}

// Schedule is a database's daily backup schedule, named by the config var
// of the attachment it backs up (DATABASE_URL).
type Schedule struct {
	UUID     string `json:"uuid"`
	Name     string `json:"name"`
	Hour     int    `json:"hour"`
	Timezone string `json:"timezone"`
}

type attachment struct {
	id, name  string
	namespace *string
	addon     string // id
	app       string // name
	created   time.Time
}

// AppOptions describe an app AddApp creates.
type AppOptions struct {
	// SQL fills the app's database.
	SQL string
	// Plan is the database's plan, without "heroku-postgresql:";
	// essential-0 when empty.
	Plan string
	// Generation is "cedar" (default) or "fir".
	Generation string
	// Formation is the process types and quantities; web=1 when nil.
	Formation map[string]int
	// Maintenance is the app's maintenance mode at the start.
	Maintenance bool
	// NoSchedule leaves the database without a backup schedule.
	NoSchedule bool
	// Backups are scheduled backups taken now, dated this long ago.
	Backups []time.Duration
	// NoDatabase creates the app with no Heroku Postgres at all.
	NoDatabase bool
	// Pooler attaches the database's connection pooler as
	// DATABASE_CONNECTION_POOL (namespace connection-pooling:default), as
	// `heroku pg:connection-pooling:attach` does; Standard plans and up.
	Pooler bool
	// Schedules are further schedules of the database, of other names
	// than DATABASE_URL.
	Schedules []Schedule
}

// PoolerNamespace is the namespace of connection pooler attachments.
const PoolerNamespace = "connection-pooling:default"

// PoolerName is the attachment name pg:connection-pooling:attach gives.
const PoolerName = "DATABASE_CONNECTION_POOL"

// AddApp creates an app with a DATABASE add-on on a new real database
// filled by opts.SQL. It returns the add-on's id ("" with NoDatabase).
func (s *Server) AddApp(name string, opts AppOptions) (string, error) {
	if opts.Plan == "" {
		opts.Plan = "essential-0"
	}
	if opts.Generation == "" {
		opts.Generation = "cedar"
	}
	if opts.Formation == nil {
		opts.Formation = map[string]int{"web": 1}
	}
	a := &app{id: newID(), name: name, maintenance: opts.Maintenance, generation: opts.Generation,
		formation: map[string]int{}, formIDs: map[string]string{}, created: time.Now().UTC(),
		configVars: map[string]string{"LANG": "en_US.UTF-8"}}
	for t, q := range opts.Formation {
		a.formation[t], a.formIDs[t] = q, newID()
	}
	s.mu.Lock()
	if _, dup := s.apps[name]; dup {
		s.mu.Unlock()
		return "", fmt.Errorf("app %s exists", name)
	}
	s.apps[name] = a
	s.mu.Unlock()
	if opts.NoDatabase {
		return "", nil
	}
	ad, err := s.newAddon(name, "postgresql-"+randomHex(4), opts.Plan)
	if err != nil {
		return "", err
	}
	ad.state, ad.provPolls, ad.waitPolls, ad.waitingPolls = "provisioned", 0, 0, 0
	if opts.SQL != "" {
		if err := s.exec(ad, opts.SQL); err != nil {
			return "", err
		}
	}
	if !opts.NoSchedule {
		ad.schedules = []Schedule{{UUID: newID(), Name: "DATABASE_URL", Hour: 2, Timezone: "UTC"}}
	}
	for _, sc := range opts.Schedules {
		sc.UUID = newID()
		ad.schedules = append(ad.schedules, sc)
	}
	s.mu.Lock()
	s.attach(ad, name, "DATABASE", nil)
	if opts.Pooler {
		if msg := poolerRefusal(ad); msg != "" {
			s.mu.Unlock()
			return "", fmt.Errorf("%s", msg)
		}
		ns := PoolerNamespace
		s.attach(ad, name, PoolerName, &ns)
	}
	s.mu.Unlock()
	for _, age := range opts.Backups {
		if _, err := s.backup(ad, time.Now().Add(-age), true); err != nil {
			return "", err
		}
	}
	return ad.id, nil
}

// newAddon creates an add-on on a new real database, owned by a new role of
// its own that is no superuser, as on Heroku: whatever the app (or a drill
// through its DATABASE_URL) does there, it does with that role's privileges.
func (s *Server) newAddon(billing, name, plan string) (*addon, error) {
	suffix := randomHex(6)
	ad := &addon{id: newID(), name: name, plan: plan, app: billing, state: "provisioning",
		dbname: "herokutest_" + suffix, user: "herokutest_u" + suffix, password: "pw" + randomHex(12), created: time.Now().UTC()}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, s.admin)
	if err != nil {
		return nil, err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE ROLE "+pgx.Identifier{ad.user}.Sanitize()+" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE"); err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.roles = append(s.roles, ad.user)
	s.mu.Unlock()
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{ad.dbname}.Sanitize()+" OWNER "+pgx.Identifier{ad.user}.Sanitize()); err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.databases = append(s.databases, ad.dbname)
	s.addons[ad.id] = ad
	s.mu.Unlock()
	return ad, nil
}

// attach attaches ad to app as name (a color when empty). Called locked.
func (s *Server) attach(ad *addon, appName, name string, namespace *string) *attachment {
	if name == "" {
		colors := []string{"AMBER", "BLUE", "CHARCOAL", "COBALT", "CRIMSON", "GOLD", "GREEN", "IVORY", "JADE", "MAROON", "NAVY", "OLIVE", "ONYX", "PINK", "PURPLE", "RED", "SILVER", "TEAL", "WHITE", "YELLOW"}
		for {
			c := colors[s.colors%len(colors)]
			if s.colors >= len(colors) {
				c = fmt.Sprintf("%s_%d", c, s.colors/len(colors))
			}
			s.colors++
			if s.attachmentNamed(appName, "HEROKU_POSTGRESQL_"+c) == nil {
				name = "HEROKU_POSTGRESQL_" + c
				break
			}
		}
	}
	at := &attachment{id: newID(), name: name, namespace: namespace, addon: ad.id, app: appName, created: time.Now().UTC()}
	s.attachments[at.id] = at
	s.attachmentRelease(at, "Attach")
	return at
}

// detach removes an attachment, a release of its app. Called locked.
func (s *Server) detach(at *attachment) {
	s.attachmentRelease(at, "Detach")
	delete(s.attachments, at.id)
}

func (s *Server) attachmentNamed(appName, name string) *attachment {
	return s.attachmentIn(appName, name, nil)
}

// attachmentIn finds the app's attachment of that name in namespace (nil:
// none). Called locked.
func (s *Server) attachmentIn(appName, name string, namespace *string) *attachment {
	for _, at := range s.attachments {
		if at.app == appName && at.name == name && sameNamespace(at.namespace, namespace) {
			return at
		}
	}
	return nil
}

func sameNamespace(a, b *string) bool {
	return (a == nil) == (b == nil) && (a == nil || *a == *b)
}

// poolerRefusal is Heroku's refusal to give a database a connection pooler,
// "" when it has one: Essential and legacy plans have none.
func poolerRefusal(ad *addon) string {
	if strings.HasPrefix(ad.plan, "essential") || ad.plan == "mini" || ad.plan == "basic" {
		return fmt.Sprintf("Connection pooling is not available on the %s plan: it is available on Standard, Premium, Private and Shield plans.", ad.plan)
	}
	return ""
}

// lastBillingAttachment reports whether at is the last attachment, outside
// any namespace, of its add-on on the add-on's billing app: Heroku refuses
// to take that one away. Called locked.
func (s *Server) lastBillingAttachment(at *attachment) bool {
	ad := s.addons[at.addon]
	for _, o := range s.attachmentsOf(at.addon) {
		if o.id != at.id && o.namespace == nil && o.app == ad.app {
			return false
		}
	}
	return at.app == ad.app
}

func (s *Server) attachmentsOf(addonID string) []*attachment {
	var out []*attachment
	for _, at := range s.attachments {
		if at.addon == addonID {
			out = append(out, at)
		}
	}
	return out
}

// findAddon finds an add-on by id or name. Called locked.
func (s *Server) findAddon(ident string) *addon {
	return find(s.addons, ident, func(ad *addon) string { return ad.name })
}

// findApp finds an app by name or id. Called locked.
func (s *Server) findApp(ident string) *app {
	return find(s.apps, ident, func(a *app) string { return a.id })
}

// find looks ident up as a key of m, then as the other identity the
// platform accepts for the same object (as the API does: id or name).
func find[T any](m map[string]*T, ident string, other func(*T) string) *T {
	if v, ok := m[ident]; ok {
		return v
	}
	for _, v := range m {
		if other(v) == ident {
			return v
		}
	}
	return nil
}

// pgURL is the add-on's DATABASE_URL: TCP, with the add-on's own password
// (trust auth on the test server ignores it; tests check it never leaks).
func (s *Server) pgURL(ad *addon) string {
	port := s.admin.Port
	if port == 0 {
		port = 5432
	}
	u := url.URL{Scheme: "postgres", User: url.UserPassword(ad.user, ad.password),
		Host: fmt.Sprintf("127.0.0.1:%d", port), Path: "/" + ad.dbname}
	return u.String()
}

// JSON shapes of the Platform API.

type ref struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

func (s *Server) appJSON(a *app) map[string]any {
	return map[string]any{
		"id": a.id, "name": a.name, "maintenance": a.maintenance,
		"generation": ref{ID: "gen-" + a.generation, Name: a.generation},
		"created_at": a.created, "updated_at": a.created, "released_at": a.created,
		"region": ref{ID: "59accabd-516d-4f0e-83e6-6e3757701145", Name: "us"},
		"stack":  ref{ID: "stack-24", Name: "heroku-24"}, "build_stack": ref{ID: "stack-24", Name: "heroku-24"},
		"owner":   map[string]string{"id": "owner-id", "email": "owner@example.com"},
		"web_url": "https://" + a.name + "-0123456789ab.herokuapp.com/", "git_url": "https://git.heroku.com/" + a.name + ".git",
		"space": nil, "team": nil, "organization": nil, "acm": false, "archived_at": nil,
	}
}

func (s *Server) addonJSON(ad *addon) map[string]any {
	billing := s.apps[ad.app]
	var cv []string
	for _, at := range s.attachmentsOf(ad.id) {
		if at.app == ad.app && at.namespace == nil {
			cv = append(cv, at.name+"_URL")
		}
	}
	sort.Strings(cv)
	if cv == nil {
		cv = []string{}
	}
	appID := ""
	if billing != nil {
		appID = billing.id
	}
	return map[string]any{
		"id": ad.id, "name": ad.name, "state": ad.state, "created_at": ad.created, "updated_at": ad.created,
		"addon_service":  ref{ID: "6c67493d-8fc2-4cd4-9161-4f1ec11cbe69", Name: "heroku-postgresql"},
		"plan":           ref{ID: "plan-" + ad.plan, Name: "heroku-postgresql:" + ad.plan},
		"app":            ref{ID: appID, Name: ad.app},
		"billing_entity": map[string]string{"id": appID, "name": ad.app, "type": "app"},
		"config_vars":    cv, "provider_id": "resource" + ad.id[:8] + "@heroku.com", "web_url": nil,
		"actions": []any{}, "provision_message": nil,
	}
}

func (s *Server) attachmentJSON(at *attachment) map[string]any {
	ad := s.addons[at.addon]
	a := s.apps[at.app]
	billing := s.apps[ad.app]
	billingID := ""
	if billing != nil {
		billingID = billing.id
	}
	return map[string]any{
		"id": at.id, "name": at.name, "namespace": at.namespace, "created_at": at.created, "updated_at": at.created,
		"addon":         map[string]any{"id": ad.id, "name": ad.name, "app": ref{ID: billingID, Name: ad.app}},
		"app":           ref{ID: a.id, Name: a.name},
		"log_input_url": nil, "web_url": nil,
	}
}

func (s *Server) formationJSON(a *app) []map[string]any {
	var out []map[string]any
	for t, q := range a.formation {
		out = append(out, map[string]any{
			"id": a.formIDs[t], "type": t, "quantity": q, "command": "bin/" + t, "size": "Basic",
			"dyno_size": ref{ID: "size-basic", Name: "Basic"}, "app": ref{ID: a.id, Name: a.name},
			"created_at": a.created, "updated_at": a.created,
		})
	}
	return out
}

// configVars derives the app's config vars: its own plus <ATTACHMENT>_URL
// for each of its attachments. Called locked.
func (s *Server) configVars(a *app) map[string]string {
	out := map[string]string{}
	for k, v := range a.configVars {
		out[k] = v
	}
	for _, at := range s.attachments {
		switch {
		case at.app != a.name:
		case at.namespace == nil:
			out[at.name+"_URL"] = s.pgURL(s.addons[at.addon])
		case *at.namespace == PoolerNamespace:
			// The pooler (PgBouncer on the database's server) has its
			// own URL; here it reaches the same database.
			out[at.name+"_URL"] = s.pgURL(s.addons[at.addon])
		}
	}
	return out
}

// planPattern is the heroku-postgresql plans Heroku accepts: the current
// tiers, Shield, the legacy mini and basic, and the Advanced tier
// (advanced-*, performance-*), served by /data/postgres/v1 only.
var planPattern = regexp.MustCompile(`^heroku-postgresql:(mini|basic|(?:essential|standard|premium|private|shield)-[0-9]+|(?:advanced|performance)(?:-[a-z0-9]+)*)$`)

// advanced reports whether the add-on is of the Advanced tier.
func (ad *addon) advanced() bool {
	return strings.HasPrefix(ad.plan, "advanced") || strings.HasPrefix(ad.plan, "performance")
}

// withApp answers a request about the app in its path, under the server's
// lock, or 404 when there is no such app.
func (s *Server) withApp(answer func(w http.ResponseWriter, r *http.Request, a *app)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		a := s.findApp(r.PathValue("app"))
		if a == nil {
			notFoundApp(w)
			return
		}
		answer(w, r, a)
	}
}

func notFoundApp(w http.ResponseWriter) {
	writeError(w, http.StatusNotFound, "not_found", "Couldn't find that app.")
}

func notFoundAddon(w http.ResponseWriter) {
	writeError(w, http.StatusNotFound, "not_found", "Couldn't find that add on.")
}

// byID is the paging key of the platform API's JSON objects.
func byID(m map[string]any) string { return m["id"].(string) }

func (s *Server) platformRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /account/rate-limits", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		writeJSON(w, http.StatusOK, map[string]int{"remaining": s.remaining})
	})
	mux.HandleFunc("GET /apps/{app}", s.withApp(func(w http.ResponseWriter, r *http.Request, a *app) {
		writeJSON(w, http.StatusOK, s.appJSON(a))
	}))
	mux.HandleFunc("PATCH /apps/{app}", func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Maintenance *bool   `json:"maintenance"`
			Name        *string `json:"name"`
		}
		if err := readJSON(r, &body); err != nil {
			writeError(w, http.StatusBadRequest, "bad_request", "Invalid JSON.")
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		a := s.findApp(r.PathValue("app"))
		if a == nil {
			notFoundApp(w)
			return
		}
		if body.Maintenance != nil {
			if *body.Maintenance && a.generation == "fir" {
				writeError(w, http.StatusUnprocessableEntity, "invalid_params", "Maintenance mode is not yet available for Fir-generation apps.")
				return
			}
			a.maintenance = *body.Maintenance
		}
		writeJSON(w, http.StatusOK, s.appJSON(a))
	})
	mux.HandleFunc("GET /apps/{app}/addon-attachments", s.withApp(func(w http.ResponseWriter, r *http.Request, a *app) {
		var items []map[string]any
		for _, at := range s.attachments {
			if at.app == a.name {
				items = append(items, s.attachmentJSON(at))
			}
		}
		page(s, w, r, items, byID)
	}))
	mux.HandleFunc("GET /addons/{addon}/addon-attachments", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		ad := s.findAddon(r.PathValue("addon"))
		if ad == nil {
			notFoundAddon(w)
			return
		}
		var items []map[string]any
		for _, at := range s.attachmentsOf(ad.id) {
			items = append(items, s.attachmentJSON(at))
		}
		page(s, w, r, items, byID)
	})
	getAddon := func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		if appName := r.PathValue("app"); appName != "" && s.findApp(appName) == nil {
			notFoundApp(w)
			return
		}
		ad := s.findAddon(r.PathValue("addon"))
		if ad == nil {
			notFoundAddon(w)
			return
		}
		if ad.state == "provisioning" && !s.neverProv {
			ad.provPolls--
			if ad.provPolls < 0 {
				ad.state = "provisioned"
			}
		}
		writeJSON(w, http.StatusOK, s.addonJSON(ad))
	}
	mux.HandleFunc("GET /addons/{addon}", getAddon)
	mux.HandleFunc("GET /apps/{app}/addons/{addon}", getAddon)
	mux.HandleFunc("GET /apps/{app}/addons", s.withApp(func(w http.ResponseWriter, r *http.Request, a *app) {
		var items []map[string]any
		for _, ad := range s.addons {
			if ad.app == a.name {
				items = append(items, s.addonJSON(ad))
			}
		}
		page(s, w, r, items, byID)
	}))
	mux.HandleFunc("POST /apps/{app}/addons", s.createAddon)
	mux.HandleFunc("DELETE /apps/{app}/addons/{addon}", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		a := s.findApp(r.PathValue("app"))
		ad := s.findAddon(r.PathValue("addon"))
		switch {
		case a == nil:
			s.mu.Unlock()
			notFoundApp(w)
			return
		case ad == nil || ad.app != a.name:
			s.mu.Unlock()
			notFoundAddon(w)
			return
		}
		for _, at := range s.attachmentsOf(ad.id) {
			s.detach(at)
		}
		delete(s.addons, ad.id)
		ad.state = "deprovisioned"
		out := s.addonJSON(ad)
		s.mu.Unlock()
		s.dropDatabase(ad.dbname)
		writeJSON(w, http.StatusOK, out)
	})
	// PATCH renames an add-on (AddOnUpdate); names are global and unique.
	mux.HandleFunc("PATCH /apps/{app}/addons/{addon}", func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Name string `json:"name"`
		}
		if err := readJSON(r, &body); err != nil || !addonNamePattern.MatchString(body.Name) {
			writeError(w, http.StatusUnprocessableEntity, "invalid_params", "Name must start with a letter and contain only lowercase letters, numbers, and dashes.")
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		a := s.findApp(r.PathValue("app"))
		ad := s.findAddon(r.PathValue("addon"))
		switch {
		case a == nil:
			notFoundApp(w)
			return
		case ad == nil || ad.app != a.name:
			notFoundAddon(w)
			return
		case s.findAddon(body.Name) != nil && s.findAddon(body.Name) != ad:
			writeError(w, http.StatusUnprocessableEntity, "invalid_params", "Name is already taken")
			return
		}
		ad.name = body.Name
		writeJSON(w, http.StatusOK, s.addonJSON(ad))
	})
	mux.HandleFunc("POST /addon-attachments", s.createAttachment)
	mux.HandleFunc("DELETE /addon-attachments/{id}", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		at, ok := s.attachments[r.PathValue("id")]
		if !ok {
			writeError(w, http.StatusNotFound, "not_found", "Couldn't find that add-on attachment.")
			return
		}
		if len(s.attachmentsOf(at.addon)) == 1 {
			writeError(w, http.StatusUnprocessableEntity, "invalid_params",
				fmt.Sprintf("%s on %s is the last attachment to %s: destroy the add-on instead.", at.name, at.app, s.addons[at.addon].name))
			return
		}
		out := s.attachmentJSON(at)
		s.detach(at)
		writeJSON(w, http.StatusOK, out)
	})
	mux.HandleFunc("GET /apps/{app}/config-vars", s.withApp(func(w http.ResponseWriter, r *http.Request, a *app) {
		writeJSON(w, http.StatusOK, s.configVars(a))
	}))
	mux.HandleFunc("GET /apps/{app}/formation", s.withApp(func(w http.ResponseWriter, r *http.Request, a *app) {
		page(s, w, r, s.formationJSON(a), byID)
	}))
	mux.HandleFunc("PATCH /apps/{app}/formation", func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Updates []struct {
				Type     string `json:"type"`
				Quantity *int   `json:"quantity"`
			} `json:"updates"`
		}
		if err := readJSON(r, &body); err != nil {
			writeError(w, http.StatusBadRequest, "bad_request", "Invalid JSON.")
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		a := s.findApp(r.PathValue("app"))
		if a == nil {
			notFoundApp(w)
			return
		}
		for _, u := range body.Updates {
			if _, ok := a.formation[u.Type]; !ok {
				writeError(w, http.StatusNotFound, "not_found", fmt.Sprintf("Couldn't find that process type (%s).", u.Type))
				return
			}
		}
		var out []map[string]any
		for _, u := range body.Updates {
			if u.Quantity != nil {
				a.formation[u.Type] = *u.Quantity
			}
		}
		for _, f := range s.formationJSON(a) {
			for _, u := range body.Updates {
				if f["type"] == u.Type {
					out = append(out, f)
				}
			}
		}
		writeJSON(w, http.StatusOK, out)
	})
}

func (s *Server) createAddon(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Plan       string            `json:"plan"`
		Name       string            `json:"name"`
		Confirm    string            `json:"confirm"`
		Config     map[string]string `json:"config"`
		Attachment *struct {
			Name string `json:"name"`
		} `json:"attachment"`
	}
	if err := readJSON(r, &body); err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", "Invalid JSON.")
		return
	}
	s.mu.Lock()
	a := s.findApp(r.PathValue("app"))
	if a == nil {
		s.mu.Unlock()
		writeError(w, http.StatusNotFound, "not_found", "Couldn't find that app.")
		return
	}
	m := planPattern.FindStringSubmatch(body.Plan)
	if m != nil && (strings.HasPrefix(m[1], "advanced") || strings.HasPrefix(m[1], "performance")) && body.Config["level"] == "" {
		s.mu.Unlock()
		writeError(w, http.StatusUnprocessableEntity, "invalid_params", "Advanced-tier databases need a level: pass config level (see `heroku data:pg:create`).")
		return
	}
	if m == nil {
		s.mu.Unlock()
		writeError(w, http.StatusUnprocessableEntity, "invalid_params", fmt.Sprintf("Couldn't find either the add-on service or the add-on plan of %q.", body.Plan))
		return
	}
	if body.Name != "" && s.findAddon(body.Name) != nil {
		s.mu.Unlock()
		writeError(w, http.StatusUnprocessableEntity, "invalid_params", "Name is already taken")
		return
	}
	attName := ""
	if body.Attachment != nil {
		attName = body.Attachment.Name
	}
	if attName == "" && s.attachmentNamed(a.name, "DATABASE") == nil {
		attName = "DATABASE"
	}
	if attName != "" && s.attachmentNamed(a.name, attName) != nil {
		s.mu.Unlock()
		writeError(w, http.StatusUnprocessableEntity, "invalid_params", fmt.Sprintf("Name %s is already used by another add-on attachment on %s.", attName, a.name))
		return
	}
	s.mu.Unlock()
	name := body.Name
	if name == "" {
		name = "postgresql-" + randomHex(4)
	}
	ad, err := s.newAddon(a.name, name, m[1])
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal_server_error", "Internal server error.")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ad.provPolls, ad.waitPolls, ad.waitingPolls = s.cfg.ProvisionPolls, s.cfg.ProvisionPolls, s.cfg.ProvisionPolls
	if ad.provPolls < 0 {
		ad.state, ad.provPolls, ad.waitPolls, ad.waitingPolls = "provisioned", 0, 0, 0
	}
	s.attach(ad, a.name, attName, nil)
	writeJSON(w, http.StatusCreated, s.addonJSON(ad))
}

// createAttachment attaches an add-on to an app. An attachment of the same
// name is replaced only with confirm=<app> (that is how pg:promote moves
// DATABASE), and never when it is the add-on's last one.
func (s *Server) createAttachment(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Addon     string  `json:"addon"`
		App       string  `json:"app"`
		Confirm   string  `json:"confirm"`
		Name      string  `json:"name"`
		Namespace *string `json:"namespace"`
	}
	if err := readJSON(r, &body); err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", "Invalid JSON.")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.findApp(body.App)
	if a == nil {
		writeError(w, http.StatusNotFound, "not_found", "Couldn't find that app.")
		return
	}
	ad := s.findAddon(body.Addon)
	if ad == nil {
		writeError(w, http.StatusNotFound, "not_found", "Couldn't find that add on.")
		return
	}
	if body.Namespace != nil && *body.Namespace == PoolerNamespace {
		if msg := poolerRefusal(ad); msg != "" {
			writeError(w, http.StatusUnprocessableEntity, "invalid_params", msg)
			return
		}
	}
	if body.Name != "" {
		if old := s.attachmentIn(a.name, body.Name, body.Namespace); old != nil {
			if old.addon == ad.id {
				writeError(w, http.StatusUnprocessableEntity, "invalid_params", fmt.Sprintf("%s is already attached to %s as %s.", ad.name, a.name, body.Name))
				return
			}
			if body.Confirm != a.name {
				writeError(w, http.StatusLocked, "confirmation_required",
					fmt.Sprintf("This action will replace the existing %s attachment on %s. To proceed, pass confirm=%s.", body.Name, a.name, a.name))
				return
			}
			oldAddon := s.addons[old.addon]
			if old.namespace == nil && s.lastBillingAttachment(old) {
				writeError(w, http.StatusUnprocessableEntity, "invalid_params",
					fmt.Sprintf("%s on %s is the last billing attachment to %s, so it cannot be moved: attach %s to %s under another name first.", old.name, a.name, oldAddon.name, oldAddon.name, a.name))
				return
			}
			s.detach(old)
		}
	}
	at := s.attach(ad, a.name, body.Name, body.Namespace)
	writeJSON(w, http.StatusCreated, s.attachmentJSON(at))
}

// Test accessors.

// Maintenance reports the app's maintenance mode.
func (s *Server) Maintenance(appName string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a := s.apps[appName]; a != nil {
		return a.maintenance
	}
	return false
}

// Formation returns the app's process types and quantities.
func (s *Server) Formation(appName string) map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	if a := s.apps[appName]; a != nil {
		for t, q := range a.formation {
			out[t] = q
		}
	}
	return out
}

// Attachment is an add-on attachment as tests see it.
type Attachment struct {
	ID, Name, AddonID, AddonName, App string
	// Namespace is "" for a plain attachment, connection-pooling:default
	// for a pooler.
	Namespace string
}

// Attachments returns the app's attachments, sorted by name.
func (s *Server) Attachments(appName string) []Attachment {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Attachment
	for _, at := range s.attachments {
		if at.app == appName {
			ns := ""
			if at.namespace != nil {
				ns = *at.namespace
			}
			out = append(out, Attachment{ID: at.id, Name: at.name, AddonID: at.addon, AddonName: s.addons[at.addon].name, App: at.app, Namespace: ns})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// ConfigVar returns one config var of the app as its dynos see it.
func (s *Server) ConfigVar(appName, name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a := s.apps[appName]; a != nil {
		return s.configVars(a)[name]
	}
	return ""
}

// SetFollowing makes an add-on a read-only follower of leader (a name), as
// `heroku addons:create --follow` would; "" makes it a leader again.
func (s *Server) SetFollowing(addonID, leader string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ad := s.addons[addonID]; ad != nil {
		ad.following = leader
	}
}

// Schedules returns the backup schedules of an add-on.
func (s *Server) Schedules(addonID string) []Schedule {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ad := s.addons[addonID]; ad != nil {
		return append([]Schedule(nil), ad.schedules...)
	}
	return nil
}

var addonNamePattern = regexp.MustCompile(`^[a-z][a-z0-9-]{2,100}$`)

// AddOn is an add-on as tests see it.
type AddOn struct {
	ID, Name, Plan, State, App string
	// Database is the real database's name on the local Postgres.
	Database string
}

// AddOns returns the add-ons billed to the app, sorted by name.
func (s *Server) AddOns(appName string) []AddOn {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []AddOn
	for _, ad := range s.addons {
		if ad.app == appName {
			out = append(out, AddOn{ID: ad.id, Name: ad.name, Plan: ad.plan, State: ad.state, App: ad.app, Database: ad.dbname})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// DatabaseOf returns the real database name of an add-on, "" if gone.
func (s *Server) DatabaseOf(addonID string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ad := s.addons[addonID]; ad != nil {
		return ad.dbname
	}
	return ""
}

// Passwords returns the passwords of every add-on's URL, for tests that
// check none leaks.
func (s *Server) Passwords() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, ad := range s.addons {
		out = append(out, ad.password)
	}
	return out
}

// Exec runs SQL on an add-on's database.
func (s *Server) Exec(addonID, sql string) error {
	s.mu.Lock()
	ad := s.addons[addonID]
	s.mu.Unlock()
	if ad == nil {
		return fmt.Errorf("no add-on %s", addonID)
	}
	return s.exec(ad, sql)
}

// exec runs sql on the add-on's database as its own role, as the app would.
func (s *Server) exec(ad *addon, sql string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, s.addonConfig(ad))
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	return err
}

// addonConfig connects to the add-on's database as its own role.
func (s *Server) addonConfig(ad *addon) *pgx.ConnConfig {
	cfg := s.admin.Copy()
	cfg.Database, cfg.User = ad.dbname, ad.user
	return cfg
}

func (s *Server) dropDatabase(dbname string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, s.admin)
	if err != nil {
		return
	}
	defer conn.Close(ctx)
	_, _ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{dbname}.Sanitize()+" WITH (FORCE)")
}

// resetDatabase empties the add-on's database the way Heroku's restore does
// before it loads a backup, as the database's own role: every schema
// outside the system ones is dropped, and an empty public schema made again.
func (s *Server) resetDatabase(ad *addon) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, s.addonConfig(ad))
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, `DO $$
		DECLARE n text;
		BEGIN
			FOR n IN SELECT nspname FROM pg_namespace
				WHERE nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
				  AND nspname NOT LIKE 'pg\_temp\_%' AND nspname NOT LIKE 'pg\_toast\_temp\_%'
			LOOP
				EXECUTE format('DROP SCHEMA %I CASCADE', n);
			END LOOP;
			CREATE SCHEMA public AUTHORIZATION pg_database_owner;
			GRANT USAGE ON SCHEMA public TO PUBLIC;
		END $$`)
	return err
}
