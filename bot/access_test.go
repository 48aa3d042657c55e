package bot_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/restore-drill/restore-drill/bot"
	"github.com/restore-drill/restore-drill/bot/slacktest"
	"github.com/restore-drill/restore-drill/drill"
	"github.com/restore-drill/restore-drill/drill/drilltest"
	"github.com/restore-drill/restore-drill/drill/schedule"
)

// TestRefusal_TellsOutsidersNothingOfTheConfiguration: someone who may not
// run drills, naming an app outside DRILL_APPS or a channel outside
// DRILL_ALLOWED_CHANNELS, is refused without learning which apps and
// channels are allowed; an allowed user is told, to fix the typo.
func TestRefusal_TellsOutsidersNothingOfTheConfiguration(t *testing.T) {
	t.Parallel()
	bd := setup(t, options{access: bot.Access{AllowedUsers: []string{alice}, Apps: []string{"secret-app-name"}, AllowedChannels: []string{channel, "C0SECRETCH"}}})
	for _, text := range []string{"run other-app", "backups other-app", "history other-app"} {
		_, a := bd.command(t, mallory, text)
		got := ackText(t, a)
		if !strings.Contains(got, "is not an app this bot may touch") || strings.Contains(got, "secret-app-name") {
			t.Errorf("%q by an outsider: %q", text, got)
		}
		_, a = bd.command(t, alice, text)
		if got := ackText(t, a); !strings.Contains(got, "secret-app-name") {
			t.Errorf("%q by an allowed user lacks the list: %q", text, got)
		}
	}
	id := bd.fake.SlashCommand(t, slacktest.Slash{User: mallory, Channel: "C0ELSEWHERE", Text: "help"})
	if got := ackText(t, bd.fake.WaitAck(t, id)); !strings.Contains(got, "does not work in this channel") || strings.Contains(got, "C0SECRETCH") {
		t.Errorf("an outsider in another channel: %q", got)
	}
}

// TestStatus_HidesDrillsOfAppsOutsideAllowList: drills other processes run
// on apps outside DRILL_APPS are neither listed nor found by id, nor are
// their schedules.
func TestStatus_HidesDrillsOfAppsOutsideAllowList(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := drilltest.NewStateStore(t)
	bd := setup(t, options{store: store, access: bot.Access{AllowedUsers: []string{alice}, Apps: []string{"visible-app"}}})
	hidden := drill.DrillRecord{DrillID: drill.NewDrillID(), App: "hidden-app", Provider: "local", Mode: drill.ModeVerify, Requester: bob, StartedAt: time.Now()}
	release, err := store.Begin(ctx, hidden)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	visible := drill.DrillRecord{DrillID: drill.NewDrillID(), App: "visible-app", Provider: "local", Mode: drill.ModeVerify, Requester: bob, StartedAt: time.Now()}
	releaseVisible, err := store.Begin(ctx, visible)
	if err != nil {
		t.Fatal(err)
	}
	defer releaseVisible()
	for _, app := range []string{"hidden-app", "visible-app"} {
		if err := store.SaveSchedule(ctx, schedule.Entry{App: app, Spec: "daily", Mode: drill.ModeVerify, Channel: channel, CreatedBy: alice, CreatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	if _, a := bd.command(t, alice, "schedules"); strings.Contains(ackText(t, a), "hidden-app") || !strings.Contains(ackText(t, a), "visible-app") {
		t.Errorf("schedules: %q", ackText(t, a))
	}
	for _, u := range []string{alice, mallory} {
		_, a := bd.command(t, u, "status")
		got := ackText(t, a)
		if strings.Contains(got, "hidden-app") || strings.Contains(got, hidden.DrillID) || !strings.Contains(got, visible.DrillID) {
			t.Errorf("status for %s: %q", u, got)
		}
		_, a = bd.command(t, u, "status "+hidden.DrillID)
		if got := ackText(t, a); strings.Contains(got, "hidden-app") || !strings.Contains(got, "no drill") {
			t.Errorf("status %s for %s: %q", hidden.DrillID, u, got)
		}
	}
}

// TestAccess_ClosedUnlessSomeoneIsNamed: with no user and no group named,
// nobody may run a destructive command, unless Anyone says so explicitly.
func TestAccess_ClosedUnlessSomeoneIsNamed(t *testing.T) {
	t.Parallel()
	closed := setup(t, options{access: bot.Access{AllowedUsers: []string{}}})
	if _, a := closed.command(t, alice, "run "+closed.app); !strings.Contains(ackText(t, a), "not allowed") {
		t.Fatalf("a run with nobody named: %q", ackText(t, a))
	}
	open := setup(t, options{access: bot.Access{AllowedUsers: []string{}, Anyone: true}})
	if _, a := open.command(t, mallory, "cancel "+drill.NewDrillID()); !strings.Contains(ackText(t, a), "is not running") {
		t.Fatalf("a cancel with anyone allowed: %q", ackText(t, a))
	}
}
