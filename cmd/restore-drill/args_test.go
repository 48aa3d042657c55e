package main

import (
	"errors"
	"strings"
	"testing"

	"github.com/restore-drill/restore-drill/drill"
)

func TestParseRunArgs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		args    []string
		want    runArgs
		wantErr string
	}{
		{name: "Defaults", args: []string{"demo"},
			want: runArgs{opts: drill.Options{App: "demo", Mode: drill.ModeVerify, Backup: drill.BackupRef{Kind: drill.BackupFresh}}}},
		{name: "FlagsAfterApp", args: []string{"demo", "--mode", "full", "--backup=b002", "--keep", "--json", "--confirm", "demo", "--provider", "local"},
			want: runArgs{provider: "local", confirm: "demo", json: true, opts: drill.Options{App: "demo", Mode: drill.ModeFull, Keep: true, Backup: drill.BackupRef{Kind: drill.BackupByID, Num: 2}}}},
		{name: "FlagsBeforeApp", args: []string{"--backup", "latest", "demo"},
			want: runArgs{opts: drill.Options{App: "demo", Mode: drill.ModeVerify, Backup: drill.BackupRef{Kind: drill.BackupLatest}}}},
		{name: "NumericBackup", args: []string{"demo", "--backup", "7"},
			want: runArgs{opts: drill.Options{App: "demo", Mode: drill.ModeVerify, Backup: drill.BackupRef{Kind: drill.BackupByID, Num: 7}}}},
		{name: "NoApp", args: nil, wantErr: "exactly one app"},
		{name: "TwoApps", args: []string{"a", "b"}, wantErr: "exactly one app"},
		{name: "UnknownFlag", args: []string{"demo", "--force"}, wantErr: `unknown flag "--force"`},
		{name: "MissingValue", args: []string{"demo", "--mode"}, wantErr: "--mode needs a value"},
		{name: "BadMode", args: []string{"demo", "--mode", "fast"}, wantErr: `"fast" is not a mode`},
		{name: "BadBackup", args: []string{"demo", "--backup", "x12"}, wantErr: `"x12" is not a backup`},
		{name: "ZeroBackup", args: []string{"demo", "--backup", "b000"}, wantErr: "count from b001"},
		{name: "BadProvider", args: []string{"demo", "--provider", "aws"}, wantErr: `"aws" is not a provider`},
		{name: "BoolWithValue", args: []string{"demo", "--keep=yes"}, wantErr: "--keep takes no value"},
		{name: "Twice", args: []string{"demo", "--mode", "full", "--mode", "verify"}, wantErr: "given twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseRunArgs(tt.args)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want %q", err, tt.wantErr)
				}
				if drill.ErrorCode(err) != drill.EINVALID {
					t.Errorf("code %s, want invalid", drill.ErrorCode(err))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestParseBackupsArgs(t *testing.T) {
	t.Parallel()
	got, err := parseBackupsArgs([]string{"--json", "demo"})
	if err != nil || got != (backupsArgs{app: "demo", json: true}) {
		t.Fatalf("got %+v, %v", got, err)
	}
	if _, err := parseBackupsArgs([]string{"demo", "--mode", "full"}); err == nil || !strings.Contains(err.Error(), "usage: restore-drill backups") {
		t.Fatalf("err %v, want unknown flag with usage", err)
	}
}

// FuzzParseRunArgs: any command line parses or fails with one invalid-input
// sentence that shows the usage; never a panic.
func FuzzParseRunArgs(f *testing.F) {
	for _, s := range []string{"demo", "demo --mode full", "--backup b002 demo --keep", "demo --backup=", "-- --mode", "demo\x00 --json", "é --confirm é"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		got, err := parseRunArgs(strings.Fields(line))
		if err != nil {
			if drill.ErrorCode(err) != drill.EINVALID {
				t.Fatalf("error of code %s: %v", drill.ErrorCode(err), err)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error is not one sentence: %q", err)
			}
			return
		}
		if got.opts.App == "" && len(strings.Fields(line)) > 0 && !strings.Contains(line, "--") {
			t.Fatalf("parsed without an app: %+v", got)
		}
		if got.opts.Mode != drill.ModeVerify && got.opts.Mode != drill.ModeFull {
			t.Fatalf("mode %q", got.opts.Mode)
		}
	})
}

// FuzzParseBackupRef: ids either parse to a positive number, or to a legacy
// Heroku name (o + a name: found by name in the transfer list), that prints
// back as an id that parses to the same ref, or fail clearly.
func FuzzParseBackupRef(f *testing.F) {
	for _, s := range []string{"b002", "a005", "2", "latest", "fresh", "b0", "B12", "c999999999", "r1", "b1234567890", "ob001", "OA0", "o"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ref, err := drill.ParseBackupRef(s)
		if err != nil {
			if drill.ErrorCode(err) != drill.EINVALID {
				t.Fatalf("code %s", drill.ErrorCode(err))
			}
			return
		}
		if ref.Kind == drill.BackupByID {
			if (ref.Num <= 0) == (ref.Name == "") {
				t.Fatalf("num %d, name %q from %q: want a positive number or a legacy name", ref.Num, ref.Name, s)
			}
			again, err := drill.ParseBackupRef(ref.String())
			if err != nil || again != ref {
				t.Fatalf("%q -> %v -> %v, %v", s, ref, again, err)
			}
		}
	})
}

func TestRedactingHandler_RemovesCredentialsFromEveryAttribute(t *testing.T) {
	t.Parallel()
	var buf strings.Builder
	r := drill.NewRedactor()
	r.AddSecret("hrku-secret-key-42")
	logger := newLogger(&buf, "debug", r).With("url", "postgres://u:pw-in-with@db/x")
	logger.Error("failed with hrku-secret-key-42", "err", errors.New("dial postgres://u:pw-in-err@db/x"), "key", "hrku-secret-key-42")
	out := buf.String()
	for _, secret := range []string{"pw-in-with", "pw-in-err", "hrku-secret-key-42"} {
		if strings.Contains(out, secret) {
			t.Errorf("log line holds %q: %s", secret, out)
		}
	}
	if !strings.Contains(out, "REDACTED") {
		t.Errorf("nothing was redacted: %s", out)
	}
}
