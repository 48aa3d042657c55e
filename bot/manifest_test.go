package bot_test

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"testing"

	"github.com/restore-drill/restore-drill/bot"
	"github.com/restore-drill/restore-drill/bot/slacktest"
)

// slackCalls maps each slack-go client function the bot may call to the
// Web API methods it calls. A call to a function not listed fails
// TestManifestScopesMatchTheMethodsCalled: list it, and the scope follows.
var slackCalls = map[string][]string{
	"PostMessageContext":         {"chat.postMessage"}, // also response_url, which needs no scope
	"UpdateMessageContext":       {"chat.update"},
	"PostEphemeralContext":       {"chat.postEphemeral"},
	"OpenViewContext":            {"views.open"},
	"UpdateViewContext":          {"views.update"},
	"JoinConversationContext":    {"conversations.join"},
	"GetUserGroupMembersContext": {"usergroups.users.list"},
	"UploadFileContext":          {"files.getUploadURLExternal", "files.completeUploadExternal"},
	"AuthTestContext":            {"auth.test"}, // the workspace's address, for links; no scope
	"RunContext":                 nil,           // Socket Mode: the app token's connections:write
	"Ack":                        nil,           // an envelope's ack, on the socket
}

// TestManifestScopesMatchTheMethodsCalled reads every Slack call in the
// bot's code and checks that the manifest asks for exactly the scopes they
// need: none missing (Slack would answer missing_scope), none unused.
// (The fake Slack also refuses, in every test, a method whose scope the
// manifest lacks.)
func TestManifestScopesMatchTheMethodsCalled(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	call := regexp.MustCompile(`\.Client\.(\w+)\(`)
	need := map[string]string{"commands": "the /restore-drill slash command"}
	for _, f := range files {
		if m, _ := filepath.Match("*_test.go", f); m {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range call.FindAllSubmatch(src, -1) {
			fn := string(m[1])
			methods, ok := slackCalls[fn]
			if !ok {
				t.Errorf("%s calls slack-go's %s: list the Web API methods it calls in slackCalls", f, fn)
				continue
			}
			for _, method := range methods {
				scope, known := slacktest.RequiredScope(method)
				if !known {
					t.Errorf("%s (%s) is not a method the fake Slack knows", method, fn)
				}
				if scope != "" {
					need[scope] = method
				}
				if method == "chat.postMessage" {
					// Posting in a public channel the bot has not joined
					// (the incident channel, a schedule's channel).
					need["chat:write.public"] = method
				}
			}
		}
	}
	got := bot.ManifestScopes()
	for scope, why := range need {
		if !slices.Contains(got, scope) {
			t.Errorf("the manifest lacks %s, which %s needs", scope, why)
		}
	}
	for _, scope := range got {
		if _, ok := need[scope]; !ok {
			t.Errorf("the manifest asks for %s, which nothing the bot calls needs", scope)
		}
	}
	sort.Strings(got)
	t.Logf("manifest scopes: %v", got)
}
