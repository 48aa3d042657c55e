package heroku

import (
	"context"
	"errors"

	heroku "github.com/heroku/heroku-go/v6"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/restore-drill/restore-drill/drill"
	"github.com/restore-drill/restore-drill/drill/pgsum"
)

// connConfig reads the connection string of an add-on fresh from the config
// vars of an app it is attached to (Heroku may rotate it at any time) and
// parses it. The URL is never logged or put in an error.
func (p *Provider) connConfig(ctx context.Context, db drill.Database) (*pgx.ConnConfig, error) {
	atts, err := p.addonAttachments(ctx, db.ID)
	if err != nil {
		return nil, err
	}
	att, err := urlAttachment(atts, db)
	if err != nil {
		return nil, err
	}
	return p.configURL(ctx, att.App.Name, att.Name+"_URL", db.Name)
}

// urlAttachment picks, among an add-on's attachments, the one whose config
// var holds its default credential: DATABASE if it is one, else any
// without a namespace.
func urlAttachment(atts []heroku.AddOnAttachment, db drill.Database) (heroku.AddOnAttachment, error) {
	best := -1
	for i, a := range atts {
		if a.Namespace != nil {
			continue // credential:… and pooler attachments carry other roles
		}
		if best < 0 || a.Name == "DATABASE" {
			best = i
		}
	}
	if best < 0 {
		return heroku.AddOnAttachment{}, drill.Errorf(drill.ENOTFOUND, "database %s is attached to no app, so its connection string cannot be read", db.Name)
	}
	return atts[best], nil
}

// configURL reads config var name of app and parses it as a Postgres URL.
func (p *Provider) configURL(ctx context.Context, app, name, dbName string) (*pgx.ConnConfig, error) {
	vars, err := p.configVars(ctx, app)
	if err != nil {
		return nil, err
	}
	return p.parseURL(vars, app, name, dbName)
}

// configVars reads app's config vars, fresh.
func (p *Provider) configVars(ctx context.Context, app string) (map[string]*string, error) {
	vars, err := p.svc.ConfigVarInfoForApp(ctx, app)
	if err != nil {
		return nil, p.interpret(err, op{what: "read the config vars of " + app, notFound: appNotFound(app)})
	}
	return vars, nil
}

// parseURL parses config var name of app, from vars, as a Postgres URL.
func (p *Provider) parseURL(vars map[string]*string, app, name, dbName string) (*pgx.ConnConfig, error) {
	v, ok := vars[name]
	if !ok || v == nil || *v == "" {
		return nil, drill.Errorf(drill.ENOTFOUND, "%s has no config var %s for database %s", app, name, dbName)
	}
	cfg, err := pgx.ParseConfig(*v)
	if err != nil {
		// The parse error may quote the URL: keep only our sentence.
		return nil, drill.Errorf(drill.EFAILED, "config var %s of %s is not a Postgres URL", name, app)
	}
	if cfg.RuntimeParams == nil {
		cfg.RuntimeParams = map[string]string{}
	}
	cfg.RuntimeParams["application_name"] = "restore-drill"
	return cfg, nil
}

func (p *Provider) connect(ctx context.Context, cfg *pgx.ConnConfig, dbName string) (*pgx.Conn, error) {
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, p.interpretPG(err, dbName)
	}
	return conn, nil
}

// interpretPG turns pgx errors into drill errors, redacted.
func (p *Provider) interpretPG(err error, dbName string) error {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if de := (*drill.Error)(nil); errors.As(err, &de) {
		return err // already says what to do (e.g. an unsafe canary table)
	}
	cause := errors.New(p.redactor.Redact(err.Error()))
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return drill.Wrap(drill.EFAILED, cause, "Postgres on %s said: %s", dbName, p.redactor.Redact(pgErr.Message))
	}
	var connErr *pgconn.ConnectError
	if errors.As(err, &connErr) {
		return drill.Wrap(drill.EFAILED, cause, "cannot connect to database %s with the URL in its config var: it may be restarting or its credentials rotated; run the drill again", dbName)
	}
	return drill.Wrap(drill.EFAILED, cause, "talking to database %s failed", dbName)
}

// WriteCanary writes the canary through the app's DATABASE_URL.
func (p *Provider) WriteCanary(ctx context.Context, app string, c drill.Canary) error {
	cfg, err := p.configURL(ctx, app, "DATABASE_URL", "DATABASE of "+app)
	if err != nil {
		return err
	}
	conn, err := p.connect(ctx, cfg, "DATABASE of "+app)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	err = pgsum.WriteCanary(ctx, conn, pgsum.Canary{DrillID: c.DrillID, Token: c.Token, At: c.At})
	return p.interpretPG(err, "DATABASE of "+app)
}

// FindCanary looks for the canary in db.
func (p *Provider) FindCanary(ctx context.Context, db drill.Database, c drill.Canary) (bool, error) {
	cfg, err := p.connConfig(ctx, db)
	if err != nil {
		return false, err
	}
	conn, err := p.connect(ctx, cfg, db.Name)
	if err != nil {
		return false, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	found, err := pgsum.FindCanary(ctx, conn, pgsum.Canary{DrillID: c.DrillID, Token: c.Token, At: c.At})
	return found, p.interpretPG(err, db.Name)
}

// Fingerprint fingerprints db over SQL.
func (p *Provider) Fingerprint(ctx context.Context, db drill.Database) (drill.Fingerprint, error) {
	cfg, err := p.connConfig(ctx, db)
	if err != nil {
		return drill.Fingerprint{}, err
	}
	fp, err := pgsum.Fingerprint(ctx, cfg, pgsum.Options{Workers: p.cfg.Workers})
	if err != nil {
		return drill.Fingerprint{}, p.interpretPG(err, db.Name)
	}
	return fp, nil
}

var _ drill.Freshener = (*Provider)(nil)

// Freshness reads the newest timestamps of db's data over SQL.
func (p *Provider) Freshness(ctx context.Context, db drill.Database) ([]drill.Freshness, error) {
	cfg, err := p.connConfig(ctx, db)
	if err != nil {
		return nil, err
	}
	conn, err := p.connect(ctx, cfg, db.Name)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	out, err := pgsum.Freshness(ctx, conn, 5)
	return out, p.interpretPG(err, db.Name)
}
