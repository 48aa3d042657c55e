// Package localpg is the drill provider for a plain Postgres server: an app is
// a database on the server, backups are pg_dump custom-format files kept with
// their metadata in a directory, a restore is pg_restore -j into a scratch
// database named after the drill, maintenance keeps ordinary roles out with
// CONNECTION LIMIT 0, and promote swaps database names.
package localpg

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/restore-drill/restore-drill/drill"
	"github.com/restore-drill/restore-drill/drill/pgsum"
)

// Config configures the provider.
type Config struct {
	// Server is the parsed connection config of the Postgres server; its
	// Database is the one used for administration ("postgres" when empty).
	Server *pgx.ConnConfig
	// BackupDir is where dumps and their metadata are kept, one
	// subdirectory per app.
	BackupDir string
	// Jobs is pg_restore's -j; 2 when zero.
	Jobs int
	// Workers is the number of connections used to fingerprint; 4 when zero.
	Workers int
	// PgDump and PgRestore are the binaries; found on PATH when empty.
	PgDump, PgRestore string
	Logger            *slog.Logger
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// ProgressInterval is how often a restore reports the bytes of the
	// dump read so far; 1 s when zero.
	ProgressInterval time.Duration
}

// Provider implements drill.Provider on a Postgres server.
type Provider struct {
	cfg      Config
	adminDB  string
	redactor *drill.Redactor

	mu sync.Mutex
	// limits are the connection limits apps' databases had outside
	// maintenance (see StateKeeper).
	limits map[string]int
}

var _ drill.Provider = (*Provider)(nil)

var _ drill.CaptureSettler = (*Provider)(nil)

// New returns a provider for the server cfg.Server points at. It makes no
// connection.
func New(cfg Config) (*Provider, error) {
	if cfg.Server == nil {
		return nil, drill.Errorf(drill.ECONFIG, "no Postgres server configured: set LOCAL_POSTGRES_URL")
	}
	if cfg.BackupDir == "" {
		return nil, drill.Errorf(drill.ECONFIG, "no backup directory configured: set BACKUP_DIR")
	}
	if cfg.ProgressInterval <= 0 {
		cfg.ProgressInterval = time.Second
	}
	if cfg.Jobs <= 0 {
		cfg.Jobs = 2
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 4
	}
	if cfg.PgDump == "" {
		cfg.PgDump = "pg_dump"
	}
	if cfg.PgRestore == "" {
		cfg.PgRestore = "pg_restore"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	p := &Provider{cfg: cfg, adminDB: cfg.Server.Database, redactor: drill.NewRedactor(), limits: map[string]int{}}
	if p.adminDB == "" {
		p.adminDB = "postgres"
	}
	p.redactor.AddSecret(cfg.Server.Password)
	return p, nil
}

// Name returns "local".
func (p *Provider) Name() string { return "local" }

var appNamePattern = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_-]{0,62}$`)

// CheckAppName accepts Postgres database names made of letters, digits, _
// and -, at most 63 bytes, that are not the server's own databases.
func (p *Provider) CheckAppName(name string) error {
	if !appNamePattern.MatchString(name) {
		return drill.Errorf(drill.EINVALID, "%q is not a local app name: use the name of a database on the server (letters, digits, _ and -, not starting with -, at most 63)", clip(name))
	}
	switch name {
	case "template0", "template1", p.adminDB, "restore_drill":
		return drill.Errorf(drill.EINVALID, "%q is one of the server's own databases, not an app: name the database of an app", name)
	}
	return nil
}

// connect opens a connection to dbname (the admin database when empty).
func (p *Provider) connect(ctx context.Context, dbname string) (*pgx.Conn, error) {
	cfg := p.connConfigFor(ctx, dbname)
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, p.interpret(err, dbname)
	}
	return conn, nil
}

// appName is the application_name of the drill's sessions: restore-drill
// and the drill's id, so a resumer can find what a dead drill left running.
func appName(ctx context.Context) string {
	if id := drill.DrillFrom(ctx); id != "" {
		return "restore-drill " + id
	}
	return "restore-drill"
}

// connConfigFor is connConfig with the drill's application_name.
func (p *Provider) connConfigFor(ctx context.Context, dbname string) *pgx.ConnConfig {
	cfg := p.connConfig(dbname)
	cfg.RuntimeParams["application_name"] = appName(ctx)
	return cfg
}

func (p *Provider) connConfig(dbname string) *pgx.ConnConfig {
	cfg := p.cfg.Server.Copy()
	if dbname == "" {
		dbname = p.adminDB
	}
	cfg.Database = dbname
	if cfg.RuntimeParams == nil {
		cfg.RuntimeParams = map[string]string{}
	}
	cfg.RuntimeParams["application_name"] = "restore-drill"
	// The database's owner may set its search_path (ALTER DATABASE … SET)
	// so that its functions shadow pg_catalog's, e.g. an aggregate max();
	// the drill's sessions, often a superuser's, resolve names in
	// pg_catalog first, whatever the database says.
	cfg.RuntimeParams["search_path"] = "pg_catalog, pg_temp"
	return cfg
}

// interpret turns pgx errors into drill errors that say what to do. It is the
// one place where Postgres's errors cross into the domain.
func (p *Provider) interpret(err error, dbname string) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if de := (*drill.Error)(nil); errors.As(err, &de) {
		return err // already says what to do (e.g. an unsafe canary table)
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "3D000":
			return drill.Wrap(drill.ENOTFOUND, err, "there is no database named %q on the server (it may have been dropped): `psql -l` lists them", dbname)
		case "28P01", "28000":
			return drill.Wrap(drill.ECONFIG, err, "the Postgres server refused the login of %q: check the user and password in LOCAL_POSTGRES_URL", p.cfg.Server.User)
		case "42501":
			return drill.Wrap(drill.ECONFIG, err, "the Postgres role %q lacks a privilege the drill needs (%s): use a superuser or a role with CREATEDB that owns the app's database", p.cfg.Server.User, p.redactor.Redact(pgErr.Message))
		case "57P01", "57P02", "57P03":
			return drill.Wrap(drill.EFAILED, err, "the Postgres server is shutting down or restarting: run the drill again once it is up")
		case "55006":
			return drill.Wrap(drill.EFAILED, err, "database %q is in use by other sessions", dbname)
		}
		return drill.Wrap(drill.EFAILED, err, "Postgres said: %s", p.redactor.Redact(pgErr.Message))
	}
	var connErr *pgconn.ConnectError
	if errors.As(err, &connErr) {
		return drill.Wrap(drill.ECONFIG, errors.New(p.redactor.Redact(err.Error())),
			"cannot reach the Postgres server at %s: start it, or set LOCAL_POSTGRES_URL to a server that runs", p.where())
	}
	return drill.Wrap(drill.EFAILED, errors.New(p.redactor.Redact(err.Error())), "talking to Postgres failed")
}

// where names the server without credentials.
func (p *Provider) where() string {
	s := p.cfg.Server
	if filepath.IsAbs(s.Host) {
		return fmt.Sprintf("socket %s/.s.PGSQL.%d", s.Host, s.Port)
	}
	return fmt.Sprintf("%s:%d", s.Host, s.Port)
}

// database is a row of pg_database.
type database struct {
	oid       uint32
	name      string
	connLimit int
	tag       string // the restore_drill.scratch setting, "" when none
	size      int64
	encoding  string
	collate   string
	ctype     string
}

func (d database) ref() drill.Database {
	t, _ := parseTag(d.tag)
	return drill.Database{ID: strconv.FormatUint(uint64(d.oid), 10), Name: d.name, DrillID: t.drillID}
}

const databaseColumns = `d.oid, d.datname, d.datconnlimit, ` + tagColumn + `,
	pg_database_size(d.oid), pg_encoding_to_char(d.encoding), d.datcollate, d.datctype`

func scanDatabase(row pgx.Row) (database, error) {
	var d database
	err := row.Scan(&d.oid, &d.name, &d.connLimit, &d.tag, &d.size, &d.encoding, &d.collate, &d.ctype)
	return d, err
}

// lookupByName returns the database called name.
func (p *Provider) lookupByName(ctx context.Context, conn *pgx.Conn, name string) (database, error) {
	d, err := scanDatabase(conn.QueryRow(ctx, `SELECT `+databaseColumns+` FROM pg_database d WHERE d.datname = $1`, name))
	if errors.Is(err, pgx.ErrNoRows) {
		return d, drill.Errorf(drill.ENOTFOUND, "there is no database named %q on the server at %s: `psql -l` lists them", name, p.where())
	}
	return d, p.interpret(err, name)
}

// lookupByID returns the database with the given oid, which survives renames.
func (p *Provider) lookupByID(ctx context.Context, conn *pgx.Conn, db drill.Database) (database, error) {
	oid, err := strconv.ParseUint(db.ID, 10, 32)
	if err != nil {
		return database{}, drill.Errorf(drill.EINVALID, "%q is not a database id on a Postgres server", db.ID)
	}
	d, err := scanDatabase(conn.QueryRow(ctx, `SELECT `+databaseColumns+` FROM pg_database d WHERE d.oid = $1`, uint32(oid)))
	if errors.Is(err, pgx.ErrNoRows) {
		return d, drill.Errorf(drill.ENOTFOUND, "database %s (oid %s) no longer exists on the server: it was dropped while the drill ran", db.Name, db.ID)
	}
	return d, p.interpret(err, db.Name)
}

// withAdmin runs fn on a connection to the admin database.
func (p *Provider) withAdmin(ctx context.Context, fn func(conn *pgx.Conn) error) error {
	conn, err := p.connect(ctx, "")
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	return fn(conn)
}

// withDatabase runs fn on a connection to the database db, found by oid.
func (p *Provider) withDatabase(ctx context.Context, db drill.Database, fn func(conn *pgx.Conn, name string) error) error {
	var name string
	if err := p.withAdmin(ctx, func(admin *pgx.Conn) error {
		d, err := p.lookupByID(ctx, admin, db)
		name = d.name
		return err
	}); err != nil {
		return err
	}
	conn, err := p.connect(ctx, name)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	return fn(conn, name)
}

// Describe returns the app's database, its maintenance state and whether
// full mode can run.
func (p *Provider) Describe(ctx context.Context, app string) (drill.App, error) {
	var out drill.App
	err := p.withAdmin(ctx, func(conn *pgx.Conn) error {
		if err := p.checkTools(ctx, conn); err != nil {
			return err
		}
		d, err := p.lookupByName(ctx, conn, app)
		if err != nil {
			return err
		}
		if t, ok := parseTag(d.tag); ok {
			return drill.Errorf(drill.EINVALID, "%q is a scratch database made by drill %s, not an app: drill %s instead", app, t.drillID, t.app)
		}
		var super bool
		if err := conn.QueryRow(ctx, `SELECT rolsuper FROM pg_roles WHERE rolname = current_user`).Scan(&super); err != nil {
			return p.interpret(err, app)
		}
		out = drill.App{Name: app, Database: d.ref(), Maintenance: d.connLimit == 0, SizeBytes: d.size}
		if d.connLimit != 0 {
			// What maintenance off gives back, journaled with the undo of
			// maintenance on before it is made.
			p.rememberLimit(app, d.connLimit)
		}
		if !super {
			out.FullModeRefusal = fmt.Sprintf("full mode needs a superuser: maintenance (CONNECTION LIMIT 0) would lock out the drill's role %q too; run it as a superuser or use verify mode", p.cfg.Server.User)
		}
		return nil
	})
	return out, err
}

// WriteCanary writes the canary into the app's database.
func (p *Provider) WriteCanary(ctx context.Context, app string, c drill.Canary) error {
	conn, err := p.connect(ctx, app)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	return p.interpret(pgsum.WriteCanary(ctx, conn, pgsum.Canary{DrillID: c.DrillID, Token: c.Token, At: c.At}), app)
}

// FindCanary looks for the canary in db.
func (p *Provider) FindCanary(ctx context.Context, db drill.Database, c drill.Canary) (bool, error) {
	var found bool
	err := p.withDatabase(ctx, db, func(conn *pgx.Conn, name string) error {
		var err error
		found, err = pgsum.FindCanary(ctx, conn, pgsum.Canary{DrillID: c.DrillID, Token: c.Token, At: c.At})
		return p.interpret(err, name)
	})
	return found, err
}

// Fingerprint fingerprints db.
func (p *Provider) Fingerprint(ctx context.Context, db drill.Database) (drill.Fingerprint, error) {
	var fp drill.Fingerprint
	err := p.withDatabase(ctx, db, func(_ *pgx.Conn, name string) error {
		var err error
		fp, err = pgsum.Fingerprint(ctx, p.connConfigFor(ctx, name), pgsum.Options{Workers: p.cfg.Workers})
		return p.interpret(err, name)
	})
	return fp, err
}

// Serving returns the database now called by the app's name.
func (p *Provider) Serving(ctx context.Context, app string) (drill.Database, error) {
	var out drill.Database
	err := p.withAdmin(ctx, func(conn *pgx.Conn) error {
		d, err := p.lookupByName(ctx, conn, app)
		out = d.ref()
		return err
	})
	return out, err
}

func clip(s string) string {
	if r := []rune(s); len(r) > 40 {
		return string(r[:40]) + "…"
	}
	return s
}

// ensureDir makes dir, saying clearly when it cannot.
func ensureDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return drill.Wrap(drill.ECONFIG, err, "cannot create the backup directory %s: set BACKUP_DIR to a writable directory", dir)
	}
	return nil
}

var _ drill.Freshener = (*Provider)(nil)

// Freshness reads the newest timestamps of db's data.
func (p *Provider) Freshness(ctx context.Context, db drill.Database) ([]drill.Freshness, error) {
	var out []drill.Freshness
	err := p.withDatabase(ctx, db, func(conn *pgx.Conn, name string) error {
		var err error
		out, err = pgsum.Freshness(ctx, conn, 5)
		return p.interpret(err, name)
	})
	return out, err
}
