package bot

import (
	_ "embed"
	"strings"
)

//go:embed manifest.yml
var manifest string

// Manifest returns the Slack app manifest (YAML): Socket Mode on, the slash
// command, interactivity and the minimal bot scopes. Paste it into
// https://api.slack.com/apps → Create New App → From a manifest.
func Manifest() string { return manifest }

// ManifestScopes returns the bot scopes the manifest asks for
// (oauth_config.scopes.bot), in its order.
func ManifestScopes() []string {
	type key struct {
		indent int
		name   string
	}
	var out []string
	var path []key
	for _, line := range strings.Split(manifest, "\n") {
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		indent := len(line) - len(strings.TrimLeft(line, " "))
		if item, ok := strings.CutPrefix(trimmed, "- "); ok {
			if len(path) == 3 && path[0].name == "oauth_config" && path[1].name == "scopes" && path[2].name == "bot" {
				out = append(out, strings.Trim(strings.TrimSpace(item), `"'`))
			}
			continue
		}
		for len(path) > 0 && path[len(path)-1].indent >= indent {
			path = path[:len(path)-1]
		}
		name, _, _ := strings.Cut(trimmed, ":")
		path = append(path, key{indent, name})
	}
	return out
}

// ManifestShouldEscape reports the slash command's should_escape: whether
// Slack sends #channel and @user as links (<#C…|name>, <@U…>).
func ManifestShouldEscape() bool {
	for _, line := range strings.Split(manifest, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "should_escape:"); ok {
			return strings.TrimSpace(v) == "true"
		}
	}
	return false
}
