package bot

import _ "embed"

//go:embed manifest.yml
var manifest string

// Manifest returns the Slack app manifest (YAML): Socket Mode on, the slash
// command, interactivity and the minimal bot scopes. Paste it into
// https://api.slack.com/apps → Create New App → From a manifest.
func Manifest() string { return manifest }
