package bot_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/restore-drill/restore-drill/bot"
	"github.com/restore-drill/restore-drill/bot/botpg"
	"github.com/restore-drill/restore-drill/bot/botriver"
	"github.com/restore-drill/restore-drill/bot/slacktest"
	"github.com/restore-drill/restore-drill/drill"
	"github.com/restore-drill/restore-drill/drill/drilltest"
	"github.com/restore-drill/restore-drill/drill/localpg"
	"github.com/restore-drill/restore-drill/drill/pgstate"
)

const (
	alice   = "UALICE01" // requester, allowed
	bob     = "UBOB0002" // allowed
	mallory = "UMALLORY" // not allowed
	channel = "C0PS0001"
)

// appSQL fills a test app database.
const appSQL = `
CREATE TABLE items (id int PRIMARY KEY, note text);
INSERT INTO items SELECT g, 'item <' || g || '> & co' FROM generate_series(1, 200) g;
CREATE TABLE "Mixed Case" (v jsonb);
INSERT INTO "Mixed Case" SELECT jsonb_build_object('g', g) FROM generate_series(1, 20) g;
`

type bundle struct {
	fake     *slacktest.Server
	bot      *bot.Bot
	app      string
	cancel   context.CancelFunc
	provider drill.Provider
	queue    *botriver.Queue
}

type options struct {
	access         bot.Access
	confirmTimeout time.Duration
	twoPerson      bool
	sql            string
	// store, when set, makes the bot durable on this state database, as
	// restore-drill bot is; app reuses an app database (a second bot
	// process on the same app).
	store           *pgstate.Store
	app             string
	incidentChannel string
	// backupDir is the local provider's; a fresh one when empty.
	backupDir string
	// provider replaces the local provider (then app names its app).
	provider drill.Provider
	// engine, when set, wraps the bot's engine; pending replaces the
	// pending store.
	engine func(bot.Engine) bot.Engine
	now    func() time.Time
	// wrapStore wraps the bot's state store (not the engine's journal).
	wrapStore func(bot.StateStore) bot.StateStore
	pending   func(bot.PendingStore) bot.PendingStore
	// secrets are added to the bot's redactor.
	secrets []string
	// httpTimeout is the Slack client's (SlackConfig.HTTPTimeout).
	httpTimeout time.Duration
	// queue runs drills as River jobs in the state database (needs store),
	// as restore-drill bot does.
	queue bool
	// fake reuses a fake Slack (another bot process of the same
	// workspace); worker makes that process take no socket of its own: it
	// only runs the jobs the queue hands it.
	fake   *slacktest.Server
	worker bool
	// logs, when set, gets every log line of the bot as JSON.
	logs io.Writer
}

// newApp makes an app database and drops it and whatever a drill left.
func newApp(t *testing.T, sql string) string {
	t.Helper()
	app := drilltest.CreateDatabase(t, "botapp")
	drilltest.Exec(t, app, sql)
	t.Cleanup(func() {
		conn := drilltest.Connect(t, "")
		rows, err := conn.Query(context.Background(), `SELECT datname FROM pg_database
			WHERE (EXISTS (SELECT 1 FROM pg_db_role_setting s, unnest(s.setconfig) c
			WHERE s.setdatabase = pg_database.oid AND s.setrole = 0 AND c LIKE 'restore\_drill.scratch=restore-drill scratch %app=' || $1)
			   OR datname LIKE $1 || '\_orig\_%') AND datname <> $1`, app)
		if err != nil {
			t.Error(err)
			return
		}
		var names []string
		for rows.Next() {
			var n string
			_ = rows.Scan(&n)
			names = append(names, n)
		}
		for _, n := range names {
			drilltest.DropDatabase(t, n)
		}
	})
	return app
}

func logger(t *testing.T) *slog.Logger {
	if os.Getenv("BOT_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// setup starts a fake Slack, a bot connected to it over the websocket, and
// an app database on the local provider.
func setup(t *testing.T, o options) *bundle {
	t.Helper()
	if o.sql == "" {
		o.sql = appSQL
	}
	if o.access.AllowedUsers == nil && o.access.AdminGroup == "" {
		o.access.AllowedUsers = []string{alice, bob}
	}
	if o.confirmTimeout == 0 {
		o.confirmTimeout = time.Minute
	}
	fake := o.fake
	if fake == nil {
		fake = slacktest.New(t)
		fake.PingInterval = 2 * time.Second
		fake.AddChannel(channel, "ops")
		for id, name := range map[string]string{alice: "alice", bob: "bob", mallory: "mallory", "U0BOT": "restore-drill"} {
			fake.AddUser(id, name)
		}
	}
	app := o.app
	if app == "" {
		app = newApp(t, o.sql)
	}
	if o.backupDir == "" {
		o.backupDir = t.TempDir()
	}
	var p drill.Provider = o.provider
	if p == nil {
		lp, err := localpg.New(localpg.Config{Server: drilltest.ConnConfig(t, ""), BackupDir: o.backupDir})
		if err != nil {
			t.Fatal(err)
		}
		p = lp
	}
	// The fake pings every 2 s: a socket silent for 6 s is dead, so a
	// dropped one is replaced quickly even on a loaded machine.
	api, sm := bot.NewSlack(bot.SlackConfig{AppToken: fake.AppToken, BotToken: fake.BotToken, APIURL: fake.APIURL(), HTTPTimeout: o.httpTimeout, PingInterval: 6 * time.Second})
	log := logger(t)
	if o.logs != nil {
		log = slog.New(slog.NewJSONHandler(o.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	engine := &bot.RunnerEngine{Provider: p, Logger: log}
	cfg := bot.Config{
		Engine:    engine,
		Transport: &bot.SlackTransport{Client: api},
		Access:    o.access, TwoPerson: o.twoPerson,
		ConfirmTimeout: o.confirmTimeout, UpdateInterval: 50 * time.Millisecond,
		IncidentChannel: o.incidentChannel,
		Logger:          log,
		Now:             o.now,
	}
	if len(o.secrets) > 0 {
		cfg.Redactor = drill.NewRedactor()
		for _, sec := range o.secrets {
			cfg.Redactor.AddSecret(sec)
		}
	}
	if o.store != nil {
		engine.Journal, engine.History = o.store, o.store
		cfg.Store, cfg.Pending = o.store, &botpg.Pending{Store: o.store, PollInterval: 20 * time.Millisecond}
		if o.wrapStore != nil {
			cfg.Store = o.wrapStore(cfg.Store)
		}
	}
	if o.engine != nil {
		cfg.Engine = o.engine(cfg.Engine)
	}
	if o.pending != nil {
		var ps bot.PendingStore = bot.NewMemoryPending()
		if cfg.Pending != nil {
			ps = cfg.Pending
		}
		cfg.Pending = o.pending(ps)
	}
	var q *botriver.Queue
	if o.queue {
		if err := botriver.Migrate(context.Background(), o.store.Pool()); err != nil {
			t.Fatal(err)
		}
		var err error
		if q, err = botriver.New(o.store.Pool(), botriver.Options{Logger: log, StopTimeout: 5 * time.Second, PollInterval: 100 * time.Millisecond}); err != nil {
			t.Fatal(err)
		}
		cfg.Queue = q
	}
	b := bot.New(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	if q != nil {
		queued := make(chan error, 1)
		go func() { queued <- q.Run(ctx, b) }()
		t.Cleanup(func() {
			cancel()
			if err := <-queued; err != nil {
				t.Errorf("queue: %v", err)
			}
		})
	}
	bd := &bundle{fake: fake, bot: b, app: app, cancel: cancel, provider: p, queue: q}
	if o.worker {
		t.Cleanup(cancel)
		return bd
	}
	done := make(chan error, 1)
	l := &bot.Listener{Bot: b, Client: sm, Logger: log}
	go func() { done <- l.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("listener: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("the listener did not stop within 30 s")
		}
	})
	fake.WaitConnected(t)
	t.Cleanup(func() { bd.checkInvariants(t) })
	return bd
}

// checkInvariants holds for every test: acks within 3 s and under limits,
// every call within Block Kit limits, no credential anywhere.
func (bd *bundle) checkInvariants(t *testing.T) {
	t.Helper()
	var lat []time.Duration
	for _, a := range bd.fake.Acks() {
		if a.Latency >= 3*time.Second {
			t.Errorf("ack of %s took %s", a.EnvelopeID, a.Latency)
		}
		if err := slacktest.CheckAck(a); err != nil {
			t.Error(err)
		}
		lat = append(lat, a.Latency)
	}
	if len(lat) > 0 {
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		t.Logf("%d acks: p50 %s, p99 %s, max %s", len(lat), lat[len(lat)/2], lat[(len(lat)*99)/100], lat[len(lat)-1])
	}
	secrets := []string{bd.fake.AppToken, bd.fake.BotToken, "xoxb-", "xapp-", "password="}
	for _, c := range bd.fake.Calls() {
		if err := slacktest.CheckLimits(c); err != nil {
			t.Errorf("limits: %v (text %.80q)", err, c.Text)
		}
		for _, s := range secrets {
			if strings.Contains(c.Body, s) || strings.Contains(c.Text, s) || strings.Contains(string(c.Blocks), s) {
				t.Errorf("%s call carries a credential %q in its content", c.Method, s)
			}
		}
		if c.Method != "response_url" && c.Token != bd.fake.BotToken {
			t.Errorf("%s used token %.5s…, not the bot token", c.Method, c.Token)
		}
	}
}

func (bd *bundle) command(t *testing.T, u, text string) (string, slacktest.Ack) {
	t.Helper()
	id := bd.fake.SlashCommand(t, slacktest.Slash{User: u, Channel: channel, Text: text})
	return id, bd.fake.WaitAck(t, id)
}

func ackText(t *testing.T, a slacktest.Ack) string {
	t.Helper()
	var p struct {
		ResponseType string `json:"response_type"`
		Text         string `json:"text"`
	}
	if err := json.Unmarshal(a.Payload, &p); err != nil {
		t.Fatalf("ack %s payload %s: %v", a.EnvelopeID, a.Payload, err)
	}
	if p.ResponseType != "ephemeral" {
		t.Fatalf("ack %s is %q, not ephemeral", a.EnvelopeID, p.ResponseType)
	}
	return p.Text
}

var drillIDInAck = regexp.MustCompile("Starting drill `(d[a-z0-9]{7})`")

// run starts a drill and returns its id and parent message.
func (bd *bundle) run(t *testing.T, text string) (string, slacktest.Call) {
	t.Helper()
	_, a := bd.command(t, alice, text)
	m := drillIDInAck.FindStringSubmatch(ackText(t, a))
	if m == nil {
		t.Fatalf("ack %q does not start a drill", ackText(t, a))
	}
	id := m[1]
	parent := bd.fake.WaitCall(t, "parent of "+id, func(c slacktest.Call) bool {
		return c.Method == "chat.postMessage" && c.Error == "" && c.ThreadTS == "" && strings.Contains(c.Text, id)
	})
	return id, parent
}

func isPrompt(c slacktest.Call) bool {
	return c.Method == "chat.postMessage" && strings.Contains(string(c.Blocks), `"restore_drill_confirm"`)
}

// prompt waits for the n-th (1-based) confirmation prompt in thread ts and
// returns it with its confirmation id.
func (bd *bundle) prompt(t *testing.T, ts string, n int) (slacktest.Call, string) {
	t.Helper()
	c := bd.fake.WaitCalls(t, "confirmation prompt", n, func(c slacktest.Call) bool { return isPrompt(c) && c.ThreadTS == ts })[n-1]
	var blocks []struct {
		Elements []struct {
			ActionID string `json:"action_id"`
			Value    string `json:"value"`
			Style    string `json:"style"`
		} `json:"elements"`
	}
	if err := json.Unmarshal(c.Blocks, &blocks); err != nil {
		t.Fatal(err)
	}
	for _, b := range blocks {
		for _, e := range b.Elements {
			if e.ActionID == "restore_drill_confirm" {
				if e.Style != "danger" {
					t.Errorf("confirm button style %q, want danger", e.Style)
				}
				return c, e.Value
			}
		}
	}
	t.Fatal("prompt without a button")
	return c, ""
}

func (bd *bundle) click(t *testing.T, u string, prompt slacktest.Call, id string) {
	t.Helper()
	env := bd.fake.Click(t, slacktest.Click{User: u, Channel: channel, MessageTS: prompt.Reply, ActionID: "restore_drill_confirm", BlockID: "confirm_actions", Value: id})
	if a := bd.fake.WaitAck(t, env); len(a.Payload) != 0 && string(a.Payload) != "null" {
		t.Fatalf("click acked with payload %s", a.Payload)
	}
}

// submit submits the modal and returns the ack's error under the input, or
// "" when the modal closed.
func (bd *bundle) submit(t *testing.T, u, id, typed string) string {
	t.Helper()
	env := bd.fake.Submit(t, slacktest.Submission{User: u, CallbackID: "restore_drill_typed", PrivateMetadata: id,
		BlockID: "typed_confirmation", ActionID: "typed", Value: typed})
	return submitError(t, bd.fake.WaitAck(t, env))
}

func submitError(t *testing.T, a slacktest.Ack) string {
	t.Helper()
	if len(a.Payload) == 0 || string(a.Payload) == "null" {
		return ""
	}
	var p struct {
		ResponseAction string            `json:"response_action"`
		Errors         map[string]string `json:"errors"`
	}
	if err := json.Unmarshal(a.Payload, &p); err != nil {
		t.Fatal(err)
	}
	if p.ResponseAction != "errors" || len(p.Errors) != 1 || p.Errors["typed_confirmation"] == "" {
		t.Fatalf("submission ack %s: want errors keyed by the input block id", a.Payload)
	}
	return p.Errors["typed_confirmation"]
}

// modal waits for the n-th (1-based) modal a click on confirmation id
// showed: the views.update that fills in the view the click opened.
func (bd *bundle) modal(t *testing.T, id string, n int) slacktest.Call {
	t.Helper()
	return bd.fake.WaitCalls(t, "the modal of "+id, n, func(c slacktest.Call) bool {
		return c.Method == "views.update" && c.Error == "" && strings.Contains(string(c.View), `"private_metadata":"`+id+`"`)
	})[n-1]
}

// clickModal clicks confirmation id's button as u and returns the modal
// the click shows.
func (bd *bundle) clickModal(t *testing.T, u string, prompt slacktest.Call, id string) slacktest.Call {
	t.Helper()
	n := 0
	for _, c := range bd.fake.Calls() {
		if c.Method == "views.update" && c.Error == "" && strings.Contains(string(c.View), `"private_metadata":"`+id+`"`) {
			n++
		}
	}
	bd.click(t, u, prompt, id)
	return bd.modal(t, id, n+1)
}

// confirm clicks and submits the right text as u.
func (bd *bundle) confirm(t *testing.T, u string, prompt slacktest.Call, id string) {
	t.Helper()
	if v := bd.clickModal(t, u, prompt, id); !strings.Contains(string(v.View), `"block_id":"typed_confirmation"`) {
		t.Fatalf("the modal has no input: %s", v.BlockText())
	}
	if e := bd.submit(t, u, id, bd.app); e != "" {
		t.Fatalf("right text rejected: %s", e)
	}
}

// verdict waits for the broadcast verdict of drill id.
func (bd *bundle) verdict(t *testing.T, parent slacktest.Call, id string) slacktest.Call {
	t.Helper()
	return bd.fake.WaitCall(t, "verdict of "+id, func(c slacktest.Call) bool {
		return c.Method == "chat.postMessage" && c.ThreadTS == parent.Reply && c.Broadcast && strings.Contains(c.Text, "Drill "+id)
	})
}

// threadTexts is what thread ts shows: each reply as last edited.
func threadTexts(calls []slacktest.Call, ts string) []string {
	var out []string
	at := map[string]int{}
	for _, c := range calls {
		if c.Method == "chat.postMessage" && c.ThreadTS == ts && c.Error == "" {
			at[c.Reply] = len(out)
			out = append(out, c.Text+"\n"+c.BlockText())
		}
		if i, ok := at[c.TS]; ok && c.Method == "chat.update" && c.Error == "" {
			out[i] = c.Text + "\n" + c.BlockText()
		}
	}
	return out
}

// waitThread waits until a reply of thread ts shows sub, and returns it.
func (bd *bundle) waitThread(t *testing.T, ts, sub string) string {
	t.Helper()
	deadline := time.Now().Add(slacktest.DefaultWait)
	for {
		for _, r := range threadTexts(bd.fake.Calls(), ts) {
			if strings.Contains(r, sub) {
				return r
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no reply of thread %s shows %q:\n%s", ts, sub, strings.Join(threadTexts(bd.fake.Calls(), ts), "\n---\n"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func containsAny(list []string, sub string) bool {
	return slices.ContainsFunc(list, func(s string) bool { return strings.Contains(s, sub) })
}

// scratchLeft lists the scratch databases drills left for app; an
// original kept for forensics (parked as APP_orig_ID) is not one.
func scratchLeft(t *testing.T, app string) []string {
	var out []string
	for _, name := range drilltest.DrillDatabases(t, app) {
		if !strings.HasPrefix(name, app+"_orig_") {
			out = append(out, name)
		}
	}
	return out
}

// localProvider is a local provider on the test server.
func localProvider(t *testing.T, backupDir string) *localpg.Provider {
	t.Helper()
	p, err := localpg.New(localpg.Config{Server: drilltest.ConnConfig(t, ""), BackupDir: backupDir})
	if err != nil {
		t.Fatal(err)
	}
	return p
}
