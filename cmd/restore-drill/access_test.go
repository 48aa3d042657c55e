package main

import (
	"strings"
	"testing"
)

// botTokens pass the token checks, so that what a test sees is the next
// check's answer; nothing connects with them.
func botTokens() []string {
	return []string{"SLACK_APP_TOKEN=xapp-1-secretvalue", "SLACK_BOT_TOKEN=xoxb-1-secretvalue", "SLACK_API_URL=http://127.0.0.1:1/api/"}
}

// TestBot_RefusesToStartOpenToAnyone: with nobody named and no explicit
// DRILL_ALLOW_ANYONE=true, anyone in the workspace could restore production
// and confirm alone, so the bot does not start.
func TestBot_RefusesToStartOpenToAnyone(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		env  []string
		want string
	}{
		{"NobodyNamed", nil, "DRILL_ALLOWED_USERS"},
		{"AllowAnyoneFalse", []string{"DRILL_ALLOW_ANYONE=false"}, "DRILL_ALLOW_ANYONE=true"},
		{"OnlyAppsAndChannels", []string{"DRILL_APPS=my-app", "DRILL_ALLOWED_CHANNELS=C1"}, "DRILL_ADMIN_GROUP"},
		{"AnyoneAndUsersContradict", []string{"DRILL_ALLOW_ANYONE=true", "DRILL_ALLOWED_USERS=U1"}, "contradicts"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := cli(t, append(botTokens(), tt.env...), "bot")
			if r.code != exitUsage || !strings.Contains(r.stderr, tt.want) {
				t.Fatalf("exit %d, stderr %q; want 2 and %q", r.code, r.stderr, tt.want)
			}
			if n := strings.Count(strings.TrimSpace(r.stderr), "\n"); n > 0 {
				t.Fatalf("more than one line: %q", r.stderr)
			}
		})
	}
}

// TestConfig_AccessVariableNamingNobodyIsAnError: every access variable
// that is set but names nobody is refused (exit 2, naming it) by every
// command, rather than read as "no restriction".
func TestConfig_AccessVariableNamingNobodyIsAnError(t *testing.T) {
	t.Parallel()
	for _, name := range accessVars() {
		for _, v := range []string{",", " ", " , ", ""} {
			for _, args := range [][]string{{"bot"}, {"backups", "some-app"}} {
				r := cli(t, append(botTokens(), "DRILL_ALLOWED_USERS=U1", name+"="+v), args...)
				if r.code != exitUsage || !strings.Contains(r.stderr, name+" is set but names nobody") {
					t.Errorf("%s=%q %s: exit %d, stderr %q; want 2 naming %s", name, v, args[0], r.code, r.stderr, name)
				}
			}
		}
	}
}

// TestConfig_InvalidValueNamesTheVariable: a bad boolean or duration says
// which variable is wrong and what would be right.
func TestConfig_InvalidValueNamesTheVariable(t *testing.T) {
	t.Parallel()
	for env, want := range map[string]string{
		"DRILL_TWO_PERSON=yes":     `DRILL_TWO_PERSON="yes" is not valid: use true or false`,
		"DRILL_ALLOW_ANYONE=si":    `DRILL_ALLOW_ANYONE="si" is not valid: use true or false`,
		"DRILL_CONFIRM_TIMEOUT=10": `DRILL_CONFIRM_TIMEOUT="10" is not valid: use a duration`,
		"DRILL_RESTORE_JOBS=two":   `DRILL_RESTORE_JOBS="two" is not valid: use a whole number`,
	} {
		r := cli(t, []string{env}, "backups", "some-app")
		if r.code != exitUsage || !strings.Contains(r.stderr, want) {
			t.Errorf("%s: exit %d, stderr %q; want 2 and %q", env, r.code, r.stderr, want)
		}
	}
}

// TestBotAccess_StartsWhenSomeoneIsNamedOrAnyoneExplicitly: the start-up
// check lets a bot start with a user, a group, or DRILL_ALLOW_ANYONE=true
// alone, and the access it builds says who may act.
func TestBotAccess_StartsWhenSomeoneIsNamedOrAnyoneExplicitly(t *testing.T) {
	t.Parallel()
	for _, cfg := range []Config{
		{AllowedUsers: []string{" U1 ", ""}},
		{AdminGroup: " S1 "},
		{AllowAnyone: true, Apps: []string{"my-app"}},
	} {
		a := botAccess(cfg)
		if err := checkBotAccess(a); err != nil {
			t.Errorf("%+v: %v", cfg, err)
		}
		if strings.Contains(a.Describe(), "nobody") {
			t.Errorf("%+v: %s", cfg, a.Describe())
		}
	}
	if d := botAccess(Config{}).Describe(); !strings.HasPrefix(d, "destructive commands and confirmations: nobody") {
		t.Errorf("empty access: %s", d)
	}
}
