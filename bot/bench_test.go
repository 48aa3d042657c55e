package bot_test

import (
	"context"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/restore-drill/restore-drill/bot"
	"github.com/restore-drill/restore-drill/bot/slacktest"
	"github.com/restore-drill/restore-drill/drill"
)

// stubEngine answers at once, so the benchmark measures the bot.
type stubEngine struct{ bot.Engine }

func (stubEngine) CheckAppName(string) error { return nil }
func (stubEngine) Resume(context.Context, drill.ResumeJournal, drill.Sink) ([]*drill.Report, error) {
	return nil, nil
}
func (stubEngine) Plan(context.Context, drill.Options) (*drill.Plan, error) {
	return &drill.Plan{App: "x", Mode: drill.ModeVerify}, nil
}

// BenchmarkAckLatency sends 200 slash commands at once and reports the ack
// latency percentiles.
func BenchmarkAckLatency(b *testing.B) {
	fake := slacktest.New(b)
	api, sm := bot.NewSlack(bot.SlackConfig{AppToken: fake.AppToken, BotToken: fake.BotToken, APIURL: fake.APIURL()})
	bt := bot.New(bot.Config{Engine: stubEngine{}, Transport: &bot.SlackTransport{Client: api}, Access: bot.Access{AllowedUsers: []string{alice}}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = (&bot.Listener{Bot: bt, Client: sm}).Run(ctx) }()
	fake.WaitConnected(b)
	texts := []string{"help", "status", "plan my-app", "run my.app", "history my-app", "cancel d1234567", "destroy", "backups"}
	var all []time.Duration
	b.ResetTimer()
	for b.Loop() {
		ids := make([]string, 200)
		var wg sync.WaitGroup
		for i := range ids {
			wg.Go(func() {
				ids[i] = fake.SlashCommand(b, slacktest.Slash{User: alice, Channel: channel, Text: texts[i%len(texts)]})
			})
		}
		wg.Wait()
		for _, id := range ids {
			all = append(all, fake.WaitAck(b, id).Latency)
		}
	}
	b.StopTimer()
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	p50, p99 := all[len(all)/2], all[len(all)*99/100]
	b.ReportMetric(float64(p50.Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(p99.Microseconds())/1000, "p99-ms")
	if p99 > 50*time.Millisecond {
		b.Errorf("ack p99 %s over the 50 ms target", p99)
	}
}
