package heroku

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	heroku "github.com/heroku/heroku-go/v6"

	"github.com/restore-drill/restore-drill/drill"
)

// The release phase. Attaching DATABASE changes config vars, which makes
// releases ("Detach DATABASE (@ref:…)", "Attach DATABASE (@ref:…)"). When
// the formation has a `release` process type, a release goes live only once
// its release phase succeeded; until then, or when it fails, the dynos keep
// the old config. pg:promote therefore waits up to 15 minutes for the
// attach release, and so does every promote here.

// releaseFor is the release of an attachment change found among the last
// ones.
type releaseFor struct {
	name string // DATABASE or DATABASE_CONNECTION_POOL
	rel  heroku.Release
}

// releaseOf reports whether a release's description is "<verb> <name>"
// (followed by nothing or " (@ref:…)"): "Attach DATABASE" must not match
// "Attach DATABASE_CONNECTION_POOL".
func releaseOf(r heroku.Release, verb, name string) bool {
	rest, ok := strings.CutPrefix(r.Description, verb+" "+name)
	return ok && (rest == "" || strings.HasPrefix(rest, " "))
}

// waitReleasePhase waits, when the app has a release phase, until the
// releases that attached DATABASE (and the pooler, when withPooler) to db
// are live, bounded by ReleaseTimeout on the provider's clock. A release
// phase that fails or never ends is an EFAILED error saying where the app
// runs now.
func (p *Provider) waitReleasePhase(ctx context.Context, app string, db drill.Database, previous string, withPooler bool) error {
	// The formation read when describing the app (or for maintenance)
	// says; another process reads it.
	p.mu.Lock()
	hasPhase, known := p.releasePhases[app]
	p.mu.Unlock()
	if !known {
		if _, err := p.formation(ctx, app); err != nil {
			return err
		}
		p.mu.Lock()
		hasPhase = p.releasePhases[app]
		p.mu.Unlock()
	}
	if !hasPhase {
		return nil
	}
	progress := drill.ProgressOf(ctx)
	recent, err := p.recentReleases(ctx, app)
	if err != nil {
		return err
	}
	names := []string{"DATABASE"}
	if withPooler {
		names = append(names, poolerName)
	}
	var waiting []releaseFor
	var detach *heroku.Release
	for _, name := range names {
		i := slices.IndexFunc(recent, func(r heroku.Release) bool { return releaseOf(r, "Attach", name) })
		if i < 0 {
			return drill.Errorf(drill.EFAILED, "%s has a release phase but none of its last 5 releases attached %s, so the drill cannot tell whether %s is live: check `heroku releases --app %s`", app, name, db.Name, app)
		}
		waiting = append(waiting, releaseFor{name: name, rel: recent[i]})
	}
	if i := slices.IndexFunc(recent, func(r heroku.Release) bool { return releaseOf(r, "Detach", "DATABASE") }); i >= 0 {
		detach = &recent[i]
	}
	start := p.cfg.Now()
	w := p.newPoller()
	for {
		var pending []releaseFor
		for _, rf := range waiting {
			switch rf.rel.Status {
			case "succeeded":
			case "failed":
				return p.releaseFailed(ctx, app, db, previous, rf, detach)
			default:
				pending = append(pending, rf)
			}
		}
		if len(pending) == 0 {
			progress(drill.Progress{Message: fmt.Sprintf("release phase of v%d succeeded: %s is live on %s", waiting[0].rel.Version, db.Name, app)})
			return nil
		}
		elapsed := p.cfg.Now().Sub(start)
		if elapsed > p.cfg.ReleaseTimeout {
			rf := pending[0]
			return drill.Errorf(drill.EFAILED, "the release phase of release v%d (%s) of %s did not end within %s, so %s may not be live: check `heroku releases:output %d --app %s`",
				rf.rel.Version, rf.rel.Description, app, p.cfg.ReleaseTimeout, db.Name, rf.rel.Version, app)
		}
		progress(drill.Progress{Message: fmt.Sprintf("waiting for the release phase of v%d (%s): %s, %s so far", pending[0].rel.Version, pending[0].rel.Description, pending[0].rel.Status, elapsed.Round(time.Second))})
		if err := w.wait(ctx); err != nil {
			return err
		}
		// One read of the last releases answers for all of them; one
		// that dropped out of it is read by id.
		if recent, err = p.recentReleases(ctx, app); err != nil {
			return err
		}
		for i, rf := range waiting {
			if rf.rel.Status == "succeeded" {
				continue
			}
			if j := slices.IndexFunc(recent, func(r heroku.Release) bool { return r.ID == rf.rel.ID }); j >= 0 {
				waiting[i].rel = recent[j]
				continue
			}
			r, err := p.svc.ReleaseInfo(ctx, app, rf.rel.ID)
			if err != nil {
				return p.interpret(err, op{what: fmt.Sprintf("read release v%d of %s", rf.rel.Version, app)})
			}
			waiting[i].rel = *r
		}
	}
}

// recentReleases reads the app's last 5 releases, newest first, as
// pg:promote reads them.
func (p *Provider) recentReleases(ctx context.Context, app string) ([]heroku.Release, error) {
	var recent []heroku.Release
	err := p.svc.Get(ctx, &recent, appPath(app)+"/releases", nil, &heroku.ListRange{Field: "version", Max: 5, Descending: true})
	return recent, p.interpret(err, op{what: "read the releases of " + app, notFound: appNotFound(app)})
}

// releaseFailed says where the app runs after the release phase of an
// attach release failed, as pg:promote does.
func (p *Provider) releaseFailed(ctx context.Context, app string, db drill.Database, previous string, rf releaseFor, detach *heroku.Release) error {
	now := fmt.Sprintf("still runs with %s as its %s", previous, rf.name)
	if rf.name == "DATABASE" && detach != nil {
		if r, err := p.svc.ReleaseInfo(ctx, app, detach.ID); err == nil && r.Status == "succeeded" {
			now = "runs without DATABASE_URL"
		}
	}
	return drill.Errorf(drill.EFAILED, "the release phase of release v%d (%s) failed, so %s is not live on %s: the app %s (see `heroku releases:output %d --app %s` for why)",
		rf.rel.Version, rf.rel.Description, db.Name, app, now, rf.rel.Version, app)
}
