package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestJSON_FailurePrintsAnErrorObject: with --json, a usage or
// configuration error prints one JSON object on stdout (result "error",
// the error, the exit code) as well as the sentence on stderr, so that
// scripts never parse empty output.
func TestJSON_FailurePrintsAnErrorObject(t *testing.T) {
	t.Parallel()
	app, env := newApp(t)
	for _, tc := range []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"UnknownFlag", nil, []string{"run", app, "--json", "--fast"}, `unknown flag "--fast"`},
		{"InvalidBoolean", []string{"DRILL_TWO_PERSON=yes"}, []string{"run", app, "--json"}, `DRILL_TWO_PERSON="yes" is not valid`},
		{"AccessVariableNamingNobody", []string{"DRILL_APPS=,"}, []string{"backups", app, "--json"}, "DRILL_APPS is set but names nobody"},
		{"UnknownApp", nil, []string{"backups", app + "_nope", "--json"}, "there is no database named"},
		{"RestoreWithoutConfirm", nil, []string{"restore", app, "b001", "--json"}, "pass --confirm " + app},
		{"BadProvider", []string{"DRILL_PROVIDER=gcp"}, []string{"plan", app, "--json"}, `DRILL_PROVIDER="gcp" is not a provider`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := cli(t, append(append([]string{}, env...), tc.env...), tc.args...)
			var got struct {
				Result   string `json:"result"`
				Error    string `json:"error"`
				ExitCode int    `json:"exit_code"`
			}
			if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
				t.Fatalf("stdout is not a JSON object (%v): %q; stderr %q", err, r.stdout, r.stderr)
			}
			if got.Result != "error" || !strings.Contains(got.Error, tc.want) || got.ExitCode != r.code || r.code != exitUsage {
				t.Errorf("got %+v, exit %d; want result error, %q, exit 2", got, r.code, tc.want)
			}
			if !strings.Contains(r.stderr, tc.want) {
				t.Errorf("stderr %q lacks %q", r.stderr, tc.want)
			}
		})
	}
	// Without --json, stdout stays empty.
	if r := cli(t, env, "run", app, "--fast"); r.stdout != "" || r.code != exitUsage {
		t.Errorf("without --json: exit %d, stdout %q", r.code, r.stdout)
	}
}
