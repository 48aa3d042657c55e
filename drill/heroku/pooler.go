package heroku

import (
	"context"
	"fmt"

	heroku "github.com/heroku/heroku-go/v6"

	"github.com/restore-drill/restore-drill/drill"
)

// The connection pooler. Standard-and-up databases may carry a
// DATABASE_CONNECTION_POOL attachment in namespace connection-pooling:default
// (`heroku pg:connection-pooling:attach`): DATABASE_CONNECTION_POOL_URL
// reaches the database through PgBouncer. pg:promote moves it with
// DATABASE; so does every promote here, or traffic through the pooler would
// still reach the database the app was moved away from.

const (
	poolerNamespace = "connection-pooling:default"
	poolerName      = "DATABASE_CONNECTION_POOL"
)

// pooler returns the app's DATABASE_CONNECTION_POOL attachment.
func pooler(atts []heroku.AddOnAttachment) (heroku.AddOnAttachment, bool) {
	for _, a := range atts {
		if a.Name == poolerName && a.Namespace != nil && *a.Namespace == poolerNamespace {
			return a, true
		}
	}
	return heroku.AddOnAttachment{}, false
}

// movePooler re-creates the app's pooler attachment on db when it is on
// from, the add-on DATABASE was just moved away from, or on another add-on
// the drill may promote away from (mayLeave): a pooler someone pointed at
// a third database is left alone. It reports whether db must now carry the
// pooler.
func (p *Provider) movePooler(ctx context.Context, app string, atts []heroku.AddOnAttachment, from string, db drill.Database, mayLeave func(heroku.AddOnAttachment) bool) (bool, error) {
	pl, ok := pooler(atts)
	switch {
	case !ok:
		return false, nil
	case pl.Addon.ID == db.ID:
		return true, nil
	case pl.Addon.ID != from && !mayLeave(pl):
		return false, nil
	}
	drill.ProgressOf(ctx)(drill.Progress{Message: fmt.Sprintf("reattaching %s to %s", poolerName, db.Name)})
	err := p.svc.Post(ctx, nil, "/addon-attachments", struct {
		Addon     string `json:"addon"`
		App       string `json:"app"`
		Confirm   string `json:"confirm"`
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
	}{Addon: db.ID, App: app, Confirm: app, Name: poolerName, Namespace: poolerNamespace})
	if err != nil {
		return true, p.interpret(err, op{what: fmt.Sprintf("move %s of %s to %s", poolerName, app, db.Name)})
	}
	return true, nil
}

// checkMoved reads the app's attachments after a move and checks that
// DATABASE, and the pooler when withPooler, are on db.
func (p *Provider) checkMoved(ctx context.Context, app string, db drill.Database, withPooler bool) error {
	atts, err := p.attachments(ctx, app)
	if err != nil {
		return err
	}
	if cur, ok := primary(atts); !ok || cur.Addon.ID != db.ID {
		return drill.Errorf(drill.EFAILED, "after the promote the DATABASE of %s is not %s: check `heroku pg:info --app %s`", app, db.Name, app)
	}
	if !withPooler {
		return nil
	}
	if pl, ok := pooler(atts); !ok || pl.Addon.ID != db.ID {
		return drill.Errorf(drill.EFAILED, "after the promote %s of %s does not reach %s, so traffic through the pooler goes elsewhere: check `heroku pg:info --app %s`", poolerName, app, db.Name, app)
	}
	return nil
}
