package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/restore-drill/restore-drill/bot"
	"github.com/restore-drill/restore-drill/bot/botpg"
	"github.com/restore-drill/restore-drill/bot/botriver"
	"github.com/restore-drill/restore-drill/drill"
	"github.com/restore-drill/restore-drill/drill/pgstate"
)

// botCommand runs the Slack bot over Socket Mode until interrupted.
func botCommand(ctx context.Context, cfg Config, args []string, tio IO, redactor *drill.Redactor) int {
	fail := failer(tio, redactor, true)
	if len(args) > 0 {
		return fail(drill.Errorf(drill.EINVALID, "bot takes no arguments; it is configured by the environment (SLACK_APP_TOKEN, SLACK_BOT_TOKEN, ...)"))
	}
	if err := bot.CheckTokens(cfg.SlackAppToken, cfg.SlackBotToken); err != nil {
		return fail(drill.Wrap(drill.ECONFIG, err, "%s", strings.TrimPrefix(err.Error(), bot.ErrTokens.Error()+": ")))
	}
	redactor.AddSecret(cfg.SlackAppToken)
	redactor.AddSecret(cfg.SlackBotToken)
	access := botAccess(cfg)
	if err := checkBotAccess(access); err != nil {
		return fail(err)
	}
	level := cfg.LogLevel
	if level == "none" {
		level = "info"
	}
	logger := newLogger(tio.Err, level, redactor)
	// The bot resumes what dead processes left as soon as it starts
	// (Background).
	engine, store, closeState, err := botEngine(ctx, cfg, logger, redactor)
	if err != nil {
		return fail(err)
	}
	defer closeState()
	// Drills run as River jobs in the state database: whichever bot
	// process takes one runs it, and a drill waiting for a confirmation
	// parks and holds no worker.
	if err := botriver.Migrate(ctx, store.Pool()); err != nil {
		return fail(drill.Wrap(drill.ECONFIG, errors.New(redactor.Redact(err.Error())), "cannot set up the job queue in the state database"))
	}
	queue, err := botriver.New(store.Pool(), botriver.Options{Logger: logger})
	if err != nil {
		return fail(drill.Wrap(drill.ECONFIG, err, "cannot start the job queue"))
	}
	api, sm := bot.NewSlack(bot.SlackConfig{AppToken: cfg.SlackAppToken, BotToken: cfg.SlackBotToken, APIURL: cfg.SlackAPIURL})
	b := bot.New(bot.Config{
		Engine:    engine,
		Transport: &bot.SlackTransport{Client: api},
		Access:    access, TwoPerson: cfg.TwoPerson, ConfirmTimeout: cfg.ConfirmTimeout,
		Pending: &botpg.Pending{Store: store}, Store: store, Queue: queue, IncidentChannel: strings.TrimSpace(cfg.IncidentChannel),
		Logger: logger, Redactor: redactor,
	})
	qctx, stopQueue := context.WithCancel(ctx)
	queued := make(chan error, 1)
	go func() { queued <- queue.Run(qctx, b) }()
	l := &bot.Listener{Bot: b, Client: sm, Logger: logger}
	logger.Info("restore-drill bot starting", "provider", engine.Provider.Name(), "slack_api", cfg.SlackAPIURL, "state", "postgres", "queue", "river")
	err = l.Run(ctx)
	stopQueue()
	if qerr := <-queued; qerr != nil {
		logger.Error("the job queue did not stop cleanly: the journal resumes what it left", "err", redactor.Redact(qerr.Error()))
	}
	b.Wait()
	if err != nil {
		fmt.Fprintln(tio.Err, "restore-drill: "+redactor.Redact(err.Error()))
		return exitFailed
	}
	return exitPassed
}

// botEngine makes the bot's and the console's engine: the configured
// provider, journaled in the state database, which journals every drill
// (one per app across every bot process and the terminal), keeps pending
// confirmations where every process sees them, the freeze, schedules and
// history.
func botEngine(ctx context.Context, cfg Config, logger *slog.Logger, redactor *drill.Redactor) (*bot.RunnerEngine, *pgstate.Store, func(), error) {
	p, err := newProvider(cfg, "", logger, redactor)
	if err != nil {
		return nil, nil, nil, err
	}
	store, closeState, err := openState(ctx, cfg, redactor)
	if err != nil {
		return nil, nil, nil, err
	}
	return &bot.RunnerEngine{Provider: p, Logger: logger, Redactor: redactor, MaxBackupAge: cfg.MaxBackupAge,
		Journal: store, History: store}, store, closeState, nil
}

// consoleCommand runs the bot on the terminal: /restore-drill lines in,
// the thread as indented text out, confirmations on the prompt.
func consoleCommand(ctx context.Context, cfg Config, args []string, tio IO, logger *slog.Logger, redactor *drill.Redactor) int {
	fail := failer(tio, redactor, true)
	if len(args) > 0 {
		return fail(drill.Errorf(drill.EINVALID, "console takes no arguments: type /restore-drill commands on its input, e.g. /restore-drill run demo"))
	}
	// The console takes part in the same state as the bot and the CLI: the
	// journal's app lock, the freeze, history and the two-person rule.
	engine, store, closeState, err := botEngine(ctx, cfg, logger, redactor)
	if err != nil {
		return fail(err)
	}
	defer closeState()
	me := currentUser()
	t := bot.NewConsoleTransport(tio.Out, me)
	access := botAccess(cfg)
	// Slack ids mean nothing on a terminal, whose user can read the
	// credentials anyway.
	access.AllowedUsers, access.AdminGroup, access.AllowedChannels, access.Anyone = nil, "", nil, true
	b := bot.New(bot.Config{
		Engine:    engine,
		Transport: t, Access: access, TwoPerson: cfg.TwoPerson, ConfirmTimeout: cfg.ConfirmTimeout,
		Pending: &botpg.Pending{Store: store}, Store: store,
		Logger: logger, Redactor: redactor,
	})
	if tio.InteractiveIn {
		fmt.Fprintf(tio.Out, "restore-drill console (%s provider) as %s. Type /restore-drill help; Ctrl-D quits.\n", engine.Provider.Name(), me)
	}
	if err := bot.RunConsole(ctx, b, t, tio.In); err != nil {
		return fail(err)
	}
	return exitPassed
}

// manifestCommand prints the Slack app manifest.
func manifestCommand(args []string, tio IO) int {
	if len(args) > 0 {
		fmt.Fprintln(tio.Err, "restore-drill: manifest takes no arguments")
		return exitUsage
	}
	fmt.Fprint(tio.Out, bot.Manifest())
	return exitPassed
}
