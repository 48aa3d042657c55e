package heroku

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"

	heroku "github.com/heroku/heroku-go/v6"

	"github.com/restore-drill/restore-drill/drill"
)

// listAll GETs a Platform API list and follows Next-Range while the API
// answers 206, which heroku-go's Do does not.
func listAll[T any](ctx context.Context, p *Provider, path string) ([]T, error) {
	var out []T
	rng := ""
	for page := 0; page < 100; page++ {
		req, err := p.svc.NewRequest(ctx, http.MethodGet, path, nil, nil)
		if err != nil {
			return nil, err
		}
		if rng != "" {
			req.Header.Set("Range", rng)
		}
		resp, err := p.httpc.Do(req)
		if err != nil {
			return nil, err
		}
		var items []T
		err = json.NewDecoder(resp.Body).Decode(&items)
		resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("decode %s: %w", path, err)
		}
		out = append(out, items...)
		rng = resp.Header.Get("Next-Range")
		if resp.StatusCode != http.StatusPartialContent || rng == "" {
			return out, nil
		}
	}
	return out, nil
}

func appPath(app string) string { return "/apps/" + url.PathEscape(app) }

// appInfo reads the app; a 404 is an unknown app.
func (p *Provider) appInfo(ctx context.Context, app string) (*heroku.App, error) {
	a, err := p.svc.AppInfo(ctx, app)
	return a, p.interpret(err, op{what: "read app " + app, notFound: appNotFound(app)})
}

// attachments lists the app's add-on attachments.
func (p *Provider) attachments(ctx context.Context, app string) ([]heroku.AddOnAttachment, error) {
	l, err := listAll[heroku.AddOnAttachment](ctx, p, appPath(app)+"/addon-attachments")
	return l, p.interpret(err, op{what: "list the add-on attachments of " + app, notFound: appNotFound(app)})
}

// addonAttachments lists every attachment of an add-on, on any app.
func (p *Provider) addonAttachments(ctx context.Context, addonID string) ([]heroku.AddOnAttachment, error) {
	l, err := listAll[heroku.AddOnAttachment](ctx, p, "/addons/"+url.PathEscape(addonID)+"/addon-attachments")
	return l, p.interpret(err, op{what: "list the attachments of add-on " + addonID,
		notFound: fmt.Sprintf("add-on %s no longer exists on Heroku", addonID)})
}

// primary is the attachment named DATABASE (in no namespace).
func primary(atts []heroku.AddOnAttachment) (heroku.AddOnAttachment, bool) {
	for _, a := range atts {
		if a.Name == "DATABASE" && a.Namespace == nil {
			return a, true
		}
	}
	return heroku.AddOnAttachment{}, false
}

// serving resolves app's DATABASE attachment.
func (p *Provider) serving(ctx context.Context, app string) (heroku.AddOnAttachment, []heroku.AddOnAttachment, error) {
	atts, err := p.attachments(ctx, app)
	if err != nil {
		return heroku.AddOnAttachment{}, nil, err
	}
	a, ok := primary(atts)
	if !ok {
		return a, atts, drill.Errorf(drill.ENOTFOUND, "%s has no DATABASE attachment, so no Heroku Postgres database serves it: `heroku addons --app %s` lists its add-ons", app, app)
	}
	return a, atts, nil
}

// addon reads an add-on by id.
func (p *Provider) addon(ctx context.Context, id string) (*heroku.AddOn, error) {
	a, err := p.svc.AddOnInfo(ctx, id)
	return a, p.interpret(err, op{what: "read add-on " + id, notFound: fmt.Sprintf("add-on %s no longer exists on Heroku", id)})
}

// ref is the drill's name for an add-on: a scratch database is called by
// its attachment (DRILL_<ID>), any other by its add-on name.
func ref(addonID, addonName string) drill.Database {
	db := drill.Database{ID: addonID, Name: addonName, DrillID: drillIDOf(addonName)}
	if db.DrillID != "" {
		db.Name = scratchAttachment(db.DrillID)
	}
	return db
}
