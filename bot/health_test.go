package bot_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/restore-drill/restore-drill/bot"
	"github.com/restore-drill/restore-drill/bot/slacktest"
	"github.com/restore-drill/restore-drill/drill/drilltest"
	"github.com/restore-drill/restore-drill/drill/pgstate"
)

// flakyStore is the state database with a switch that makes it
// unreachable.
type flakyStore struct {
	*pgstate.Store
	down atomic.Bool
}

func (f *flakyStore) Ping(ctx context.Context) error {
	if f.down.Load() {
		return errors.New("dial tcp: connection refused")
	}
	return f.Store.Ping(ctx)
}

// TestHealth: losing the state database or the socket for longer than the
// grace is posted once to the incident channel, and so is the recovery.
func TestHealth(t *testing.T) {
	t.Parallel()
	fake := slacktest.New(t)
	store := &flakyStore{Store: drilltest.NewStateStore(t)}
	api, _ := bot.NewSlack(bot.SlackConfig{AppToken: fake.AppToken, BotToken: fake.BotToken, APIURL: fake.APIURL()})
	const incidents = "CINCIDENT"
	b := bot.New(bot.Config{Engine: stubEngine{}, Transport: &bot.SlackTransport{Client: api}, Store: store,
		IncidentChannel: incidents, HealthGrace: 2 * time.Minute, Logger: logger(t)})
	ctx := context.Background()
	t0 := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	alerts := func() []string {
		var out []string
		for _, c := range fake.Calls() {
			if c.Method == "chat.postMessage" && c.Channel == incidents {
				out = append(out, c.Text)
			}
		}
		return out
	}

	store.down.Store(true)
	b.Tick(ctx, t0)
	b.Tick(ctx, t0.Add(time.Minute))
	if n := len(alerts()); n != 0 {
		t.Fatalf("%d alerts within the grace", n)
	}
	b.Tick(ctx, t0.Add(3*time.Minute))
	b.Tick(ctx, t0.Add(4*time.Minute))
	if got := alerts(); len(got) != 1 || !strings.Contains(got[0], "cannot reach its state database since <!date^") {
		t.Fatalf("alerts %q", got)
	}
	store.down.Store(false)
	b.Tick(ctx, t0.Add(5*time.Minute))
	if got := alerts(); len(got) != 2 || !strings.Contains(got[1], "reaches its state database again, after 5m0s") {
		t.Fatalf("alerts %q", got)
	}

	b.SocketDown(t0.Add(10 * time.Minute))
	b.Tick(ctx, t0.Add(11*time.Minute))
	b.Tick(ctx, t0.Add(13*time.Minute))
	if got := alerts(); len(got) != 3 || !strings.Contains(got[2], "lost its Slack socket since <!date^") {
		t.Fatalf("alerts %q", got)
	}
	b.SocketUp(ctx, t0.Add(14*time.Minute))
	if got := alerts(); len(got) != 4 || !strings.Contains(got[3], "connected to Slack again, after 4m0s") {
		t.Fatalf("alerts %q", got)
	}
}
