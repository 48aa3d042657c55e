package main

import (
	"errors"
	"strings"

	"github.com/kelseyhightower/envconfig"

	"github.com/restore-drill/restore-drill/bot"
	"github.com/restore-drill/restore-drill/drill"
)

// accessVars are the variables that name who or what is allowed: each,
// when set, must name at least one.
func accessVars() []string {
	return []string{"DRILL_ALLOWED_USERS", "DRILL_ADMIN_GROUP", "DRILL_ALLOWED_CHANNELS", "DRILL_APPS"}
}

// checkAccessVars refuses an access variable that is set but names nobody
// (",", " "): whoever set it meant to restrict something, and reading it
// as "no restriction" would open what they meant to close.
func checkAccessVars(lookup func(string) (string, bool)) error {
	for _, name := range accessVars() {
		v, set := lookup(name)
		if set && strings.Trim(v, ", \t\r\n") == "" {
			return drill.Errorf(drill.ECONFIG, "%s is set but names nobody: give comma-separated ids (e.g. %s=%s) or unset it", name, name, accessExample(name))
		}
	}
	return nil
}

func accessExample(name string) string {
	switch name {
	case "DRILL_ADMIN_GROUP":
		return "S012ABC"
	case "DRILL_ALLOWED_CHANNELS":
		return "C012ABC,C034DEF"
	case "DRILL_APPS":
		return "my-app"
	}
	return "U012ABC,U034DEF"
}

// botAccess is the bot's authorization from the configuration.
func botAccess(cfg Config) bot.Access {
	clean := func(l []string) []string {
		var out []string
		for _, s := range l {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
		return out
	}
	return bot.Access{AllowedUsers: clean(cfg.AllowedUsers), AdminGroup: strings.TrimSpace(cfg.AdminGroup),
		AllowedChannels: clean(cfg.AllowedChannels), Apps: clean(cfg.Apps), Anyone: cfg.AllowAnyone}
}

// checkBotAccess refuses a bot that anyone could drive by accident: it
// starts only when someone is named, or when DRILL_ALLOW_ANYONE=true says
// that everyone may run destructive commands and confirm.
func checkBotAccess(a bot.Access) error {
	named := len(a.AllowedUsers) > 0 || a.AdminGroup != ""
	switch {
	case !named && !a.Anyone:
		return drill.Errorf(drill.ECONFIG, "nobody may run destructive commands: set DRILL_ALLOWED_USERS (Slack user ids) or DRILL_ADMIN_GROUP (a user group id), or DRILL_ALLOW_ANYONE=true to let everyone in the workspace")
	case named && a.Anyone:
		return drill.Errorf(drill.ECONFIG, "DRILL_ALLOW_ANYONE=true contradicts DRILL_ALLOWED_USERS or DRILL_ADMIN_GROUP: unset DRILL_ALLOW_ANYONE to allow only the people named")
	}
	return nil
}

// envError says which variable of the environment is wrong and what it
// should be, rather than envconfig's Go field and type names.
func envError(err error) error {
	var pe *envconfig.ParseError
	if !errors.As(err, &pe) {
		return drill.Wrap(drill.ECONFIG, err, "the environment is not valid")
	}
	want := map[string]string{
		"bool":          "true or false",
		"time.Duration": "a duration such as 90s, 10m or 26h",
		"int":           "a whole number",
	}[pe.TypeName]
	if want == "" {
		want = "a " + pe.TypeName
	}
	return drill.Wrap(drill.ECONFIG, err, "%s=%q is not valid: use %s", pe.KeyName, clip(pe.Value), want)
}
