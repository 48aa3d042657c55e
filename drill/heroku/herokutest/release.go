package herokutest

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Releases. Every change of an app's config vars (an attachment made or
// removed) is a release, as on Heroku: "Attach DATABASE (@ref:…)",
// "Detach DATABASE (@ref:…)". When the app's formation has a `release`
// process type, a release is pending while its release phase runs (at least
// until it is first read, and for ReleasePhase of the server's clock), then
// succeeded or failed; without one it succeeds at once.

type release struct {
	id, description string
	version         int
	created         time.Time
	phase           bool // a release phase runs
	ends            time.Time
	fail            bool
	seen            bool // read at least once while pending
}

// Clock is a simulated clock the fake and the provider can share: the
// provider's waits (its Sleep) advance it, so a release phase of minutes
// passes in no wall time, polled as often as the provider would poll it.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a clock at the current time.
func NewClock() *Clock { return &Clock{now: time.Now()} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Sleep advances the clock by d, unless ctx is done.
func (c *Clock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
	return nil
}

// WithClock makes the fake read the time of its release phases from now.
func WithClock(now func() time.Time) Option { return func(c *Config) { c.Now = now } }

// SetReleasePhase sets how long each release phase runs, on the server's
// clock.
func (s *Server) SetReleasePhase(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.releasePhase = d
}

// FailReleases makes the release phase of the next n releases whose
// description contains match fail.
func (s *Server) FailReleases(match string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.releaseFaults = append(s.releaseFaults, &releaseFault{match: match, left: n})
}

type releaseFault struct {
	match string
	left  int
}

func (s *Server) now() time.Time {
	if s.cfg.Now != nil {
		return s.cfg.Now()
	}
	return time.Now()
}

// release records a release of app. Called locked.
func (s *Server) release(a *app, description string) {
	_, phase := a.formation["release"]
	r := &release{id: newID(), description: description, version: len(a.releases) + 1,
		created: s.now(), phase: phase}
	r.ends = r.created.Add(s.releasePhase)
	if phase {
		for _, f := range s.releaseFaults {
			if f.left > 0 && strings.Contains(description, f.match) {
				f.left--
				r.fail = true
				break
			}
		}
	}
	a.releases = append(a.releases, r)
}

// attachmentRelease records the release of an attachment made or removed.
// Called locked.
func (s *Server) attachmentRelease(at *attachment, verb string) {
	if a := s.apps[at.app]; a != nil {
		s.release(a, fmt.Sprintf("%s %s (@ref:%s)", verb, at.name, s.addons[at.addon].name))
	}
}

// releaseStatus is the release's status now, as the API answers it (a
// read marks a pending release seen). Called locked.
func (s *Server) releaseStatus(r *release) string {
	st := s.peekStatus(r)
	r.seen = true
	return st
}

// peekStatus is the release's status, without reading it. Called locked.
func (s *Server) peekStatus(r *release) string {
	if !r.phase {
		return "succeeded"
	}
	if !r.seen || s.now().Before(r.ends) {
		return "pending"
	}
	if r.fail {
		return "failed"
	}
	return "succeeded"
}

func (s *Server) releaseJSON(a *app, r *release) map[string]any {
	return map[string]any{
		"id": r.id, "version": r.version, "description": r.description, "status": s.releaseStatus(r),
		"created_at": r.created.UTC(), "updated_at": r.created.UTC(), "current": r.version == len(a.releases),
		"app": ref{ID: a.id, Name: a.name}, "user": map[string]string{"id": "owner-id", "email": "owner@example.com"},
		"slug": nil, "addon_plan_names": []string{}, "eligible_for_rollback": true,
		"output_stream_url": nil,
	}
}

func (s *Server) releaseRoutes(mux *http.ServeMux) {
	// GET releases honours "version ..; max=N, order=desc" (what pg:promote
	// sends) and "id …" ranges; a truncated list is 206.
	mux.HandleFunc("GET /apps/{app}/releases", s.withApp(func(w http.ResponseWriter, r *http.Request, a *app) {
		rels := append([]*release(nil), a.releases...)
		field, max, desc := "id", 200, false
		if rng := r.Header.Get("Range"); rng != "" {
			f, rest, _ := strings.Cut(strings.TrimSpace(rng), " ")
			if f != "id" && f != "version" {
				writeError(w, http.StatusRequestedRangeNotSatisfiable, "invalid_range", fmt.Sprintf("Invalid range %q: releases are ranged by id or version.", rng))
				return
			}
			field = f
			if _, m, ok := strings.Cut(rest, "max="); ok {
				m, _, _ = strings.Cut(m, ",")
				if n, err := strconv.Atoi(strings.TrimSpace(m)); err == nil && n > 0 && n < max {
					max = n
				}
			}
			desc = strings.Contains(rest, "order=desc")
		}
		sort.Slice(rels, func(i, j int) bool {
			if field == "version" {
				return rels[i].version < rels[j].version
			}
			return rels[i].id < rels[j].id
		})
		if desc {
			for i, j := 0, len(rels)-1; i < j; i, j = i+1, j-1 {
				rels[i], rels[j] = rels[j], rels[i]
			}
		}
		status := http.StatusOK
		if len(rels) > max {
			rels, status = rels[:max], http.StatusPartialContent
		}
		out := []map[string]any{}
		for _, rel := range rels {
			out = append(out, s.releaseJSON(a, rel))
		}
		writeJSON(w, status, out)
	}))
	mux.HandleFunc("GET /apps/{app}/releases/{release}", s.withApp(func(w http.ResponseWriter, r *http.Request, a *app) {
		ident := r.PathValue("release")
		for _, rel := range a.releases {
			if rel.id == ident || strconv.Itoa(rel.version) == ident {
				writeJSON(w, http.StatusOK, s.releaseJSON(a, rel))
				return
			}
		}
		writeError(w, http.StatusNotFound, "not_found", "Couldn't find that release.")
	}))
}

// Release is a release as tests see it.
type Release struct {
	Version     int
	Description string
	// Status is pending, succeeded or failed.
	Status string
	// Ends is when its release phase ends on the server's clock.
	Ends time.Time
}

// Releases returns the app's releases, oldest first.
func (s *Server) Releases(appName string) []Release {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Release
	if a := s.apps[appName]; a != nil {
		for _, r := range a.releases {
			out = append(out, Release{Version: r.version, Description: r.description, Status: s.peekStatus(r), Ends: r.ends})
		}
	}
	return out
}
