package main

import (
	"fmt"
	"strings"

	"github.com/restore-drill/restore-drill/drill"
)

// flagSpec describes the flags a command takes: value flags take an
// argument (--mode full or --mode=full), bool flags take none.
type flagSpec struct {
	values map[string]bool // flag name → takes a value
}

// parsedArgs is a command line split into positional arguments and flags.
type parsedArgs struct {
	positional []string
	values     map[string]string
	bools      map[string]bool
}

// parseArgs splits args, allowing flags before and after the positional
// arguments as operators type them (run demo --mode full). A lone "--" ends
// the flags.
func parseArgs(args []string, spec flagSpec, usage string) (parsedArgs, error) {
	out := parsedArgs{values: map[string]string{}, bools: map[string]bool{}}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			out.positional = append(out.positional, args[i+1:]...)
			break
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			out.positional = append(out.positional, a)
			continue
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		takesValue, known := spec.values[name]
		if !known {
			return out, usageErrorf(usage, "unknown flag %q", clip(a))
		}
		if !takesValue {
			if hasValue {
				return out, usageErrorf(usage, "flag --%s takes no value", name)
			}
			out.bools[name] = true
			continue
		}
		if !hasValue {
			if i+1 >= len(args) {
				return out, usageErrorf(usage, "flag --%s needs a value", name)
			}
			i++
			value = args[i]
		}
		if _, dup := out.values[name]; dup {
			return out, usageErrorf(usage, "flag --%s is given twice", name)
		}
		out.values[name] = value
	}
	return out, nil
}

// usageErrorf is an EINVALID error that ends with the right usage.
func usageErrorf(usage, format string, args ...any) error {
	return drill.Errorf(drill.EINVALID, "%s; usage: %s", fmt.Sprintf(format, args...), usage)
}

func clip(s string) string {
	if r := []rune(s); len(r) > 40 {
		return string(r[:40]) + "…"
	}
	return s
}

const runUsage = "restore-drill run APP [--provider local|heroku] [--mode verify|full] [--backup fresh|latest|ID] [--keep] [--confirm APP] [--json]"

// runArgs are the inputs of the run command.
type runArgs struct {
	provider string
	opts     drill.Options
	confirm  string
	json     bool
}

func parseRunArgs(args []string) (runArgs, error) {
	p, err := parseArgs(args, flagSpec{values: map[string]bool{
		"provider": true, "mode": true, "backup": true, "confirm": true, "keep": false, "json": false,
	}}, runUsage)
	if err != nil {
		return runArgs{}, err
	}
	var out runArgs
	if len(p.positional) != 1 {
		return out, usageErrorf(runUsage, "run takes exactly one app, got %d arguments", len(p.positional))
	}
	out.opts.App = p.positional[0]
	out.opts.Mode = drill.ModeVerify
	if v, ok := p.values["mode"]; ok {
		if out.opts.Mode, err = drill.ParseMode(v); err != nil {
			return out, err
		}
	}
	out.opts.Backup = drill.BackupRef{Kind: drill.BackupFresh}
	if v, ok := p.values["backup"]; ok {
		if out.opts.Backup, err = drill.ParseBackupRef(v); err != nil {
			return out, err
		}
	}
	if out.provider, err = parseProvider(p.values); err != nil {
		return out, err
	}
	out.opts.Keep, out.json = p.bools["keep"], p.bools["json"]
	out.confirm = p.values["confirm"]
	return out, nil
}

const backupsUsage = "restore-drill backups APP [--provider local|heroku] [--json]"

type backupsArgs struct {
	app, provider string
	json          bool
}

func parseBackupsArgs(args []string) (backupsArgs, error) {
	p, err := parseArgs(args, flagSpec{values: map[string]bool{"provider": true, "json": false}}, backupsUsage)
	if err != nil {
		return backupsArgs{}, err
	}
	if len(p.positional) != 1 {
		return backupsArgs{}, usageErrorf(backupsUsage, "backups takes exactly one app, got %d arguments", len(p.positional))
	}
	out := backupsArgs{app: p.positional[0], json: p.bools["json"]}
	out.provider, err = parseProvider(p.values)
	return out, err
}

func parseProvider(values map[string]string) (string, error) {
	v, ok := values["provider"]
	if !ok {
		return "", nil // the configured default
	}
	switch v {
	case "local", "heroku":
		return v, nil
	}
	return "", drill.Errorf(drill.EINVALID, "%q is not a provider: use local or heroku", clip(v))
}

const restoreUsage = "restore-drill restore APP BACKUP [--provider local|heroku] [--into new|production] [--no-safety-backup] [--force] [--confirm TEXT] [--json]"

// restoreArgs are the inputs of the restore command.
type restoreArgs struct {
	provider string
	opts     drill.RestoreOptions
	confirm  string
	json     bool
}

func parseRestoreArgs(args []string) (restoreArgs, error) {
	p, err := parseArgs(args, flagSpec{values: map[string]bool{
		"provider": true, "into": true, "confirm": true, "no-safety-backup": false, "force": false, "json": false,
	}}, restoreUsage)
	if err != nil {
		return restoreArgs{}, err
	}
	var out restoreArgs
	if len(p.positional) != 2 {
		return out, usageErrorf(restoreUsage, "restore takes an app and a backup, got %d arguments", len(p.positional))
	}
	out.opts.App = p.positional[0]
	if out.opts.Backup, err = drill.ParseBackupRef(p.positional[1]); err != nil {
		return out, err
	}
	if out.opts.Backup.Kind == drill.BackupFresh {
		return out, usageErrorf(restoreUsage, "restore needs an existing backup (an id such as b002, or latest), not fresh")
	}
	out.opts.Into = drill.IntoNew
	if v, ok := p.values["into"]; ok {
		if out.opts.Into, err = drill.ParseInto(v); err != nil {
			return out, err
		}
	}
	if out.provider, err = parseProvider(p.values); err != nil {
		return out, err
	}
	out.opts.NoSafetyBackup, out.opts.Force, out.json = p.bools["no-safety-backup"], p.bools["force"], p.bools["json"]
	out.confirm = p.values["confirm"]
	return out, nil
}

const planUsage = "restore-drill plan APP [--provider local|heroku] [--mode verify|full] [--backup fresh|latest|ID] [--json]"

func parsePlanArgs(args []string) (runArgs, error) {
	p, err := parseArgs(args, flagSpec{values: map[string]bool{"provider": true, "mode": true, "backup": true, "json": false}}, planUsage)
	if err != nil {
		return runArgs{}, err
	}
	rebuilt := append([]string{}, p.positional...)
	for k, v := range p.values {
		rebuilt = append(rebuilt, "--"+k+"="+v)
	}
	if p.bools["json"] {
		rebuilt = append(rebuilt, "--json")
	}
	a, err := parseRunArgs(rebuilt)
	if err != nil {
		return a, drill.Errorf(drill.EINVALID, "%s", strings.Replace(drill.ErrorMessage(err), runUsage, planUsage, 1))
	}
	return a, nil
}

const captureUsage = "restore-drill capture APP [--provider local|heroku] [--json]"

func parseCaptureArgs(args []string) (backupsArgs, error) {
	p, err := parseArgs(args, flagSpec{values: map[string]bool{"provider": true, "json": false}}, captureUsage)
	if err != nil {
		return backupsArgs{}, err
	}
	if len(p.positional) != 1 {
		return backupsArgs{}, usageErrorf(captureUsage, "capture takes exactly one app, got %d arguments", len(p.positional))
	}
	out := backupsArgs{app: p.positional[0], json: p.bools["json"]}
	out.provider, err = parseProvider(p.values)
	return out, err
}
