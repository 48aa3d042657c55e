// Package heroku is the drill provider for Heroku: the Platform API through
// heroku-go v6 (apps, add-ons, attachments, config vars, formation,
// maintenance) and the Heroku Postgres data API (backups, restores,
// transfers, schedules, wait status) through a small typed client. Row data
// is read over SQL with pgx, from connection strings read fresh from the
// app's config vars and never logged.
//
// Scratch databases are heroku-postgresql add-ons whose name carries the
// drill id (restore-drill-<drillid>) and whose attachment is DRILL_<DRILLID>;
// the provider only destroys, restores onto or promotes such add-ons, or the
// original database it recorded when it described the app (for the promote
// back).
package heroku

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	heroku "github.com/heroku/heroku-go/v6"

	"github.com/restore-drill/restore-drill/drill"
)

// Defaults of Config.
const (
	DefaultAPIURL           = "https://api.heroku.com"
	DefaultDataAPIURL       = "https://api.data.heroku.com"
	DefaultPollInterval     = 3 * time.Second
	DefaultMaxPollInterval  = 30 * time.Second
	DefaultProvisionTimeout = 30 * time.Minute
	// DefaultReleaseTimeout is how long a promote waits for the release
	// phase of the release that attached DATABASE, as pg:promote does.
	DefaultReleaseTimeout = 15 * time.Minute
)

// Config configures the provider.
type Config struct {
	// APIKey is the Heroku token (HEROKU_API_KEY). Required.
	APIKey string
	// APIURL and DataAPIURL are the Platform and data API bases; the
	// defaults above when empty. Tests point them at herokutest.
	APIURL, DataAPIURL string
	// SandboxApp, when set, bills the scratch databases to this app, so
	// that provisioning them releases (restarts) nothing in production.
	SandboxApp string
	// ScratchPlan is the scratch database's plan (e.g. "essential-0");
	// the production database's plan when empty.
	ScratchPlan string
	// HTTPClient's Transport, when set, is the inner transport the
	// retrying Transport sends through (its other fields are not used).
	HTTPClient *http.Client
	// Transport, when set, replaces the retrying transport built from the
	// fields below; tests use it to shorten backoffs.
	Transport *Transport
	// PollInterval is the first wait between two polls of a transfer or a
	// provisioning; it grows by half each poll up to MaxPollInterval.
	PollInterval, MaxPollInterval time.Duration
	// ProvisionTimeout bounds the wait for a scratch database to be ready.
	ProvisionTimeout time.Duration
	// ReleaseTimeout bounds the wait for the release phase after a
	// promote, on the clock Now.
	ReleaseTimeout time.Duration
	// Workers is the number of connections used to fingerprint; 4 when 0.
	Workers int
	Logger  *slog.Logger
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Sleep waits d between two polls, or until ctx is done; a real timer
	// when nil. Tests share a simulated clock with the fake through it.
	Sleep func(ctx context.Context, d time.Duration) error
}

// Provider implements drill.Provider on Heroku.
type Provider struct {
	cfg       Config
	transport *Transport
	svc       *heroku.Service // Platform API
	httpc     *http.Client
	data      dataClient
	redactor  *drill.Redactor
	logger    *slog.Logger

	mu sync.Mutex
	// originals holds, per app, the database that served it when the
	// provider described it: the one add-on besides the drill's own that
	// Promote may move DATABASE to.
	originals map[string]drill.Database
	// formations holds, per app, the non-web quantities before
	// maintenance scaled them to 0.
	formations map[string]map[string]int
	// spares holds, per app, the attachment Promote created for the
	// original database so it kept one; promote back removes it.
	spares map[string]spare
	// releasePhases holds, per app, whether its formation had a release
	// process type when last read.
	releasePhases map[string]bool
	// protected holds, per add-on id, whether pg:info said Continuous
	// Protection is on when the app was described.
	protected map[string]bool
	// plans holds, per app, its DATABASE add-on's plan when it was last
	// described: the scratch database's plan, unless one is configured.
	plans map[string]string
}

type spare struct{ addonID, attachmentID string }

var (
	_ drill.Provider    = (*Provider)(nil)
	_ drill.CallCounter = (*Provider)(nil)
)

// New returns a provider. It makes no call; a bad token shows at the first.
func New(cfg Config) (*Provider, error) {
	if cfg.APIKey == "" {
		return nil, drill.Errorf(drill.ECONFIG, "HEROKU_API_KEY is not set: create a token with `heroku authorizations:create` and export it as HEROKU_API_KEY")
	}
	if cfg.APIURL == "" {
		cfg.APIURL = DefaultAPIURL
	}
	if cfg.DataAPIURL == "" {
		cfg.DataAPIURL = DefaultDataAPIURL
	}
	for _, u := range []string{cfg.APIURL, cfg.DataAPIURL} {
		if pu, err := url.Parse(u); err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
			return nil, drill.Errorf(drill.ECONFIG, "%q is not an API base URL: set HEROKU_API_URL and HEROKU_DATA_API_URL to URLs such as %s", clip(u), DefaultAPIURL)
		}
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = DefaultPollInterval
	}
	if cfg.MaxPollInterval < cfg.PollInterval {
		cfg.MaxPollInterval = max(DefaultMaxPollInterval, cfg.PollInterval)
	}
	if cfg.ProvisionTimeout <= 0 {
		cfg.ProvisionTimeout = DefaultProvisionTimeout
	}
	if cfg.ReleaseTimeout <= 0 {
		cfg.ReleaseTimeout = DefaultReleaseTimeout
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 4
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.SandboxApp != "" && !appNamePattern.MatchString(cfg.SandboxApp) {
		return nil, drill.Errorf(drill.ECONFIG, "DRILL_SANDBOX_APP=%q is not a Heroku app name", clip(cfg.SandboxApp))
	}
	tr := cfg.Transport
	if tr == nil {
		tr = &Transport{}
	}
	if tr.Base == nil {
		tr.Base = http.DefaultTransport
		if cfg.HTTPClient != nil && cfg.HTTPClient.Transport != nil {
			tr.Base = cfg.HTTPClient.Transport
		}
	}
	// heroku.Transport adds the Bearer token and the Accept header and
	// turns non-2xx answers into heroku.Error. Its inner transport is set
	// explicitly (a nil one is assigned on first use: a data race), and
	// Debug stays off (it would dump DATABASE_URL values).
	httpc := &http.Client{Transport: &heroku.Transport{BearerToken: cfg.APIKey, Transport: tr}}
	svc := heroku.NewService(httpc)
	svc.URL = strings.TrimRight(cfg.APIURL, "/")
	dsvc := heroku.NewService(httpc)
	dsvc.URL = strings.TrimRight(cfg.DataAPIURL, "/")
	p := &Provider{
		cfg: cfg, transport: tr, svc: svc, httpc: httpc, data: dataClient{svc: dsvc},
		redactor: drill.NewRedactor(), logger: cfg.Logger,
		originals: map[string]drill.Database{}, formations: map[string]map[string]int{}, spares: map[string]spare{},
		releasePhases: map[string]bool{}, protected: map[string]bool{}, plans: map[string]string{},
	}
	p.redactor.AddSecret(cfg.APIKey)
	return p, nil
}

// Name returns "heroku".
func (p *Provider) Name() string { return "heroku" }

// Calls returns the number of API requests made, retries included.
func (p *Provider) Calls() int { return p.transport.Calls() }

// appNamePattern is Heroku's rule for app names.
var appNamePattern = regexp.MustCompile(`^[a-z][a-z0-9-]{1,28}[a-z0-9]$`)

// CheckAppName accepts Heroku app names: 3 to 30 lowercase letters, digits
// and dashes, starting with a letter and not ending with a dash.
func (p *Provider) CheckAppName(name string) error {
	if !appNamePattern.MatchString(name) {
		return drill.Errorf(drill.EINVALID, "%q is not a Heroku app name: app names are 3 to 30 lowercase letters, digits and dashes, starting with a letter and not ending with a dash", clip(name))
	}
	return nil
}

// scratchAddonName is the name of drill id's scratch add-on. Add-on names
// are global on Heroku, so it carries the drill id.
func scratchAddonName(drillID string) string { return "restore-drill-" + drillID }

// scratchAttachment is the attachment name of drill id's scratch database.
func scratchAttachment(drillID string) string { return "DRILL_" + strings.ToUpper(drillID) }

var scratchNamePattern = regexp.MustCompile(`^restore-drill-(d[a-z0-9]{7})$`)

// drillIDOf returns the drill id an add-on's name carries, or "".
func drillIDOf(addonName string) string {
	if m := scratchNamePattern.FindStringSubmatch(addonName); m != nil {
		return m[1]
	}
	return ""
}

// op describes a call for interpret: what was being done, and what a 404
// means for it.
type op struct {
	what     string // "read app demo", "create the scratch database"
	notFound string // the sentence for a 404; a generic one when empty
}

// interpret turns heroku-go and transport errors into drill errors that say
// what to do. It is the one place where Heroku's errors cross into the
// domain; every message is redacted.
func (p *Provider) interpret(err error, o op) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	var herr heroku.Error
	if errors.As(err, &herr) {
		msg := p.redactor.Redact(strings.TrimSpace(herr.Error()))
		cause := errors.New(fmt.Sprintf("HTTP %d %s: %s", herr.StatusCode, herr.ID, msg))
		switch {
		case herr.StatusCode == http.StatusUnauthorized:
			return drill.Wrap(drill.ECONFIG, cause, "the Heroku token in HEROKU_API_KEY is invalid or expired: create a new one with `heroku authorizations:create` and set HEROKU_API_KEY")
		case herr.StatusCode == http.StatusForbidden:
			return drill.Wrap(drill.ECONFIG, cause, "Heroku refused to let this token %s (%s): use a token of an account with access to the app", o.what, sentence(msg))
		case herr.StatusCode == http.StatusNotFound:
			if o.notFound != "" {
				return drill.Wrap(drill.ENOTFOUND, cause, "%s", o.notFound)
			}
			return drill.Wrap(drill.ENOTFOUND, cause, "Heroku found nothing to %s (%s)", o.what, sentence(msg))
		case herr.StatusCode == http.StatusTooManyRequests:
			return drill.Wrap(drill.EFAILED, cause, "Heroku's rate limit stopped the drill while trying to %s, even after waiting and retrying: the account's API budget refills at about 75 calls a minute, try again later", o.what)
		case herr.StatusCode >= 500:
			return drill.Wrap(drill.EFAILED, cause, "Heroku failed to %s (HTTP %d, still after retries): check https://status.heroku.com and run the drill again", o.what, herr.StatusCode)
		}
		// 422 and the like: a plan refused, backups not available (Shield),
		// a limit reached. Heroku's message says it best.
		return drill.Wrap(drill.EFAILED, cause, "Heroku refused to %s: %s", o.what, sentence(msg))
	}
	var uerr *url.Error
	if errors.As(err, &uerr) {
		return drill.Wrap(drill.ECONFIG, errors.New(p.redactor.Redact(err.Error())),
			"cannot reach the Heroku API at %s to %s: check the network, or HEROKU_API_URL and HEROKU_DATA_API_URL", p.redactor.Redact(hostOf(uerr.URL)), o.what)
	}
	return drill.Wrap(drill.EFAILED, errors.New(p.redactor.Redact(err.Error())), "talking to Heroku failed while trying to %s", o.what)
}

func hostOf(u string) string {
	if pu, err := url.Parse(u); err == nil {
		return pu.Scheme + "://" + pu.Host
	}
	return "?"
}

// sentence trims a platform message so it reads inside ours.
func sentence(s string) string {
	s = strings.TrimSpace(s)
	s = strings.TrimRight(s, ".")
	if s == "" {
		return "no reason given"
	}
	return s
}

func clip(s string) string { return drill.Clip(s, 40) }

// appNotFound is the sentence for an app the token cannot see.
func appNotFound(app string) string {
	return fmt.Sprintf("there is no Heroku app named %s that this token can see: check the name with `heroku apps`", app)
}

// poller waits between polls, growing from PollInterval to
// MaxPollInterval, so a long transfer costs few calls.
type poller struct {
	next, max time.Duration
	sleep     func(ctx context.Context, d time.Duration) error
}

func (p *Provider) newPoller() *poller {
	return &poller{next: p.cfg.PollInterval, max: p.cfg.MaxPollInterval, sleep: p.cfg.Sleep}
}

func (w *poller) wait(ctx context.Context) error {
	d := w.next
	w.next = min(w.next+w.next/2, w.max)
	if w.sleep != nil {
		return w.sleep(ctx, d)
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}
