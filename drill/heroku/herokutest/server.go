// Package herokutest is a fake Heroku for tests: an HTTP server with the
// Platform API and Heroku Postgres data API endpoints the drill calls,
// answering with the real services' JSON shapes, status codes and error
// bodies. Its databases are real databases on the local Postgres; its
// backups run pg_dump, its restores pg_restore; promote really moves
// DATABASE_URL; maintenance and formation are state tests can read. It
// records every call and injects faults (errors on a chosen call or at a
// rate, 429 storms, restores with warnings, provisioning that never ends,
// captures that fail).
//
// Tests use NewServer; the fakeheroku command starts one by hand.
package herokutest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// APIKey is the token NewServer accepts unless WithAPIKey says otherwise.
const APIKey = "HRKU-herokutest-0123456789abcdef"

// Config configures Start.
type Config struct {
	// Addr is the address to listen on; a random local port when empty.
	Addr string
	// APIKey is the only Bearer token accepted; any non-empty one when
	// empty.
	APIKey string
	// Postgres is the server that holds the fake's databases; the libpq
	// defaults (or TEST_DATABASE_URL) when nil.
	Postgres *pgx.ConnConfig
	// PageSize is the number of items per page of a Platform list before
	// it answers 206 with Next-Range; 200 (Heroku's default) when zero.
	PageSize int
	// TransferSteps is how many polls a transfer takes to finish; 2 when
	// zero, none when negative.
	TransferSteps int
	// ProvisionPolls is how many reads of a new add-on see it
	// "provisioning", and how many wait_status calls then answer 404; 1
	// when zero, none when negative.
	ProvisionPolls int
	// Now is the clock of release phases; time.Now when nil.
	Now func() time.Time
}

// Option changes the Config of NewServer.
type Option func(*Config)

// WithAPIKey sets the accepted token ("" accepts any).
func WithAPIKey(key string) Option { return func(c *Config) { c.APIKey = key } }

// WithPageSize sets the Platform API's page size, so tests see 206 and
// Next-Range with few items.
func WithPageSize(n int) Option { return func(c *Config) { c.PageSize = n } }

// WithTransferSteps sets how many polls a transfer takes.
func WithTransferSteps(n int) Option { return func(c *Config) { c.TransferSteps = n } }

// WithProvisionPolls sets how many polls provisioning takes.
func WithProvisionPolls(n int) Option { return func(c *Config) { c.ProvisionPolls = n } }

// Call is one request the server received.
type Call struct {
	Method string
	// Path is the request path, without the query.
	Path  string
	Query string
	At    time.Time
	// Status is the status answered.
	Status int
}

func (c Call) String() string { return c.Method + " " + c.Path }

// Server is the fake Heroku.
type Server struct {
	// URL is the base of both APIs (Platform and data).
	URL string

	cfg   Config
	srv   *httptest.Server
	admin *pgx.ConnConfig
	dir   string

	mu sync.Mutex
	// restores are the restores running in the background.
	restores    sync.WaitGroup
	apps        map[string]*app
	addons      map[string]*addon
	attachments map[string]*attachment
	transfers   map[string][]*transfer // by billing app name
	calls       []Call
	faults      []*fault
	storm       int
	stormAfter  int
	failRate    float64
	rng         *mrand.Rand
	remaining   int
	warnings    bool
	// restoreDelay: see SlowRestores.
	restoreDelay time.Duration
	neverProv    bool
	captureFail  bool
	databases    []string // created, dropped at Close
	roles        []string // the add-ons' own roles, dropped at Close after their databases
	colors       int

	releasePhase  time.Duration
	releaseFaults []*releaseFault
}

type fault struct {
	method  string
	re      *regexp.Regexp
	status  int
	nth     int // 0: every matching call
	times   int // > 0: the first times matching calls
	seen    int
	message string
}

// NewServer starts a fake Heroku for the test and stops it, dropping its
// databases, at cleanup.
func NewServer(t testing.TB, opts ...Option) *Server {
	t.Helper()
	cfg := Config{APIKey: APIKey}
	for _, o := range opts {
		o(&cfg)
	}
	s, err := Start(cfg)
	if err != nil {
		t.Fatalf("start the fake Heroku: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

// Start starts a fake Heroku; Close stops it.
func Start(cfg Config) (*Server, error) {
	if cfg.PageSize <= 0 {
		cfg.PageSize = 200
	}
	if cfg.TransferSteps == 0 {
		cfg.TransferSteps = 2
	}
	if cfg.ProvisionPolls == 0 {
		cfg.ProvisionPolls = 1
	}
	admin := cfg.Postgres
	if admin == nil {
		var err error
		if admin, err = pgx.ParseConfig(os.Getenv("TEST_DATABASE_URL")); err != nil {
			return nil, fmt.Errorf("TEST_DATABASE_URL: %w", err)
		}
	}
	dir, err := os.MkdirTemp("", "herokutest")
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg: cfg, admin: admin, dir: dir,
		apps: map[string]*app{}, addons: map[string]*addon{}, attachments: map[string]*attachment{},
		transfers: map[string][]*transfer{}, rng: mrand.New(mrand.NewPCG(1, 2)), remaining: 4500,
	}
	// Check Postgres now, so a test fails with a clear message.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, admin)
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("the fake Heroku keeps its databases on the local Postgres, which is unreachable (%v): start it with `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start` or set TEST_DATABASE_URL", err)
	}
	conn.Close(ctx)
	s.srv = httptest.NewUnstartedServer(s.handler())
	if cfg.Addr != "" {
		l, err := net.Listen("tcp", cfg.Addr)
		if err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		s.srv.Listener.Close()
		s.srv.Listener = l
	}
	s.srv.Start()
	s.URL = s.srv.URL
	return s, nil
}

// Close stops the server and drops every database it created.
func (s *Server) Close() {
	s.srv.Close()
	s.mu.Lock()
	for _, list := range s.transfers {
		for _, t := range list {
			if t.running {
				t.stop()
			}
		}
	}
	s.mu.Unlock()
	s.restores.Wait()
	s.mu.Lock()
	dbs, roles := s.databases, s.roles
	s.databases, s.roles = nil, nil
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if conn, err := pgx.ConnectConfig(ctx, s.admin); err == nil {
		for _, db := range dbs {
			_, _ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{db}.Sanitize()+" WITH (FORCE)")
		}
		for _, role := range roles {
			_, _ = conn.Exec(ctx, "DROP ROLE IF EXISTS "+pgx.Identifier{role}.Sanitize())
		}
		conn.Close(ctx)
	}
	os.RemoveAll(s.dir)
}

// Fail makes matching requests fail with status: method ("" for any) and a
// regular expression the whole path must match; nth counts matching calls
// from 1 (0 fails every one). message, when given, is the error body's
// message.
func (s *Server) Fail(method, pathPattern string, status, nth int, message ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := &fault{method: method, re: regexp.MustCompile("^(?:" + pathPattern + ")$"), status: status, nth: nth}
	if len(message) > 0 {
		f.message = message[0]
	}
	s.faults = append(s.faults, f)
}

// FailTimes makes the next n requests matching method and pathPattern (as
// in Fail) fail with status.
func (s *Server) FailTimes(method, pathPattern string, status, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &fault{method: method, re: regexp.MustCompile("^(?:" + pathPattern + ")$"), status: status, times: n})
}

// FailRate answers a fraction p of all requests with 503, from a fixed seed.
func (s *Server) FailRate(p float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failRate = p
}

// RateLimitStorm answers the next n requests with 429 rate_limit and
// Retry-After: retryAfter seconds; with no Retry-After at all when
// retryAfter is negative, as Heroku often answers.
func (s *Server) RateLimitStorm(n, retryAfter int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.storm, s.stormAfter = n, retryAfter
}

// SetRateLimitRemaining sets the RateLimit-Remaining every answer carries;
// a negative n leaves the header out.
func (s *Server) SetRateLimitRemaining(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.remaining = n
}

// RestoreWarnings makes restores end as Heroku reports a pg_restore that
// skipped something: succeeded, with warnings and their log lines.
func (s *Server) RestoreWarnings(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.warnings = on
}

// NeverProvision leaves new add-ons provisioning forever.
func (s *Server) NeverProvision() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.neverProv = true
}

// CaptureFails makes backups end failed, with pg_dump's error in the logs.
func (s *Server) CaptureFails() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.captureFail = true
}

// Calls returns every request received so far, in order.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Call(nil), s.calls...)
}

// handler wraps the API routes with the call log, authentication, fault
// injection and the rate-limit header.
func (s *Server) handler() http.Handler {
	mux := http.NewServeMux()
	s.platformRoutes(mux)
	s.releaseRoutes(mux)
	s.dataRoutes(mux)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		s.mu.Lock()
		i := len(s.calls)
		s.calls = append(s.calls, Call{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, At: time.Now()})
		if s.remaining >= 0 {
			w.Header().Set("RateLimit-Remaining", strconv.Itoa(s.remaining))
		}
		status, id, msg, retry := s.injected(r)
		s.mu.Unlock()
		defer func() {
			s.mu.Lock()
			s.calls[i].Status = rec.status
			s.mu.Unlock()
		}()
		auth := r.Header.Get("Authorization")
		token, ok := strings.CutPrefix(auth, "Bearer ")
		switch {
		case !ok || token == "" || (s.cfg.APIKey != "" && token != s.cfg.APIKey):
			writeError(rec, http.StatusUnauthorized, "unauthorized", "Invalid credentials provided.")
			return
		case !strings.HasPrefix(r.Header.Get("Accept"), "application/vnd.heroku+json; version=3"):
			writeError(rec, http.StatusNotFound, "not_found", "The requested API endpoint was not found. Are you using the right HTTP verb (i.e. `GET` vs. `POST`), and did you specify your intended version with the `Accept` header?")
			return
		case status != 0:
			if retry != "" {
				rec.Header().Set("Retry-After", retry)
			}
			writeError(rec, status, id, msg)
			return
		}
		mux.ServeHTTP(rec, r)
	})
}

// injected decides whether r gets an injected failure. Called locked.
func (s *Server) injected(r *http.Request) (status int, id, msg, retryAfter string) {
	if s.storm > 0 {
		s.storm--
		retry := ""
		if s.stormAfter >= 0 {
			retry = strconv.Itoa(s.stormAfter)
		}
		return http.StatusTooManyRequests, "rate_limit", "Your account reached the API rate limit. Please wait a few minutes before making new requests.", retry
	}
	for _, f := range s.faults {
		if (f.method != "" && f.method != r.Method) || !f.re.MatchString(r.URL.Path) {
			continue
		}
		f.seen++
		if (f.times > 0 && f.seen > f.times) || (f.nth != 0 && f.seen != f.nth) {
			continue
		}
		id, msg := statusID(f.status)
		if f.message != "" {
			msg = f.message
		}
		return f.status, id, msg, ""
	}
	if s.failRate > 0 && s.rng.Float64() < s.failRate {
		return http.StatusServiceUnavailable, "unavailable", "Heroku is temporarily unavailable.", ""
	}
	return 0, "", "", ""
}

func statusID(status int) (string, string) {
	switch status {
	case http.StatusUnauthorized:
		return "unauthorized", "Invalid credentials provided."
	case http.StatusForbidden:
		return "forbidden", "You do not have access to this resource."
	case http.StatusNotFound:
		return "not_found", "Couldn't find that resource."
	case http.StatusUnprocessableEntity:
		return "invalid_params", "The request could not be processed."
	case http.StatusTooManyRequests:
		return "rate_limit", "Your account reached the API rate limit."
	}
	if status >= 500 {
		return "internal_server_error", "Internal server error."
	}
	return "bad_request", "The request was not valid."
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

// writeError writes Heroku's error body.
func writeError(w http.ResponseWriter, status int, id, message string) {
	writeJSON(w, status, map[string]string{"id": id, "message": message})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func readJSON(r *http.Request, v any) error {
	if r.Body == nil {
		return nil
	}
	dec := json.NewDecoder(r.Body)
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = (b[6] & 0x0f) | 0x40
	b[8] = (b[8] & 0x3f) | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// page answers a Platform list, sorted by id, 200 items or fewer at a time:
// a truncated list is 206 with Next-Range.
func page[T any](s *Server, w http.ResponseWriter, r *http.Request, items []T, id func(T) string) {
	sort.Slice(items, func(i, j int) bool { return id(items[i]) < id(items[j]) })
	max := s.cfg.PageSize
	after := ""
	if rng := r.Header.Get("Range"); rng != "" {
		// "id ]<last>..; max=N" as sent back from Next-Range.
		rest, _ := strings.CutPrefix(rng, "id ")
		if v, ok := strings.CutPrefix(rest, "]"); ok {
			after, _, _ = strings.Cut(v, "..")
		}
		if _, m, ok := strings.Cut(rest, "max="); ok {
			if n, err := strconv.Atoi(strings.TrimSpace(m)); err == nil && n > 0 && n < max {
				max = n
			}
		}
	}
	start := 0
	if after != "" {
		start = sort.Search(len(items), func(i int) bool { return id(items[i]) > after })
	}
	end := min(start+max, len(items))
	out := items[start:end]
	if out == nil {
		out = []T{}
	}
	status := http.StatusOK
	if end < len(items) {
		status = http.StatusPartialContent
		w.Header().Set("Next-Range", fmt.Sprintf("id ]%s..; max=%d", id(items[end-1]), max))
	}
	w.Header().Set("Content-Range", fmt.Sprintf("id %s..%s; max=%d", firstID(out, id), lastID(out, id), max))
	writeJSON(w, status, out)
}

func firstID[T any](items []T, id func(T) string) string {
	if len(items) == 0 {
		return ""
	}
	return id(items[0])
}

func lastID[T any](items []T, id func(T) string) string {
	if len(items) == 0 {
		return ""
	}
	return id(items[len(items)-1])
}
