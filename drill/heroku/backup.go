package heroku

import (
	"context"
	"fmt"
	"slices"
	"time"

	heroku "github.com/heroku/heroku-go/v6"

	"github.com/restore-drill/restore-drill/drill"
)

// Capture takes a backup of the app's DATABASE on Heroku's side and waits
// for it. Heroku's backup does not read the snapshot the drill
// fingerprints, so the fingerprint is taken twice, before and after the
// backup: when both are equal, nothing changed while the backup ran and the
// comparison is exact (unless a change was made and undone within the
// backup); otherwise differences show as drift.
func (p *Provider) Capture(ctx context.Context, app string, fingerprint bool, progress drill.ProgressFunc) (drill.Capture, error) {
	if progress == nil {
		progress = func(drill.Progress) {}
	}
	att, _, err := p.serving(ctx, app)
	if err != nil {
		return drill.Capture{}, err
	}
	source := ref(att.Addon.ID, att.Addon.Name)
	var before drill.Fingerprint
	if fingerprint {
		if before, err = p.Fingerprint(ctx, source); err != nil {
			return drill.Capture{}, err
		}
	}
	p.mu.Lock()
	protected := p.protected[att.Addon.ID]
	p.mu.Unlock()
	if protected {
		// What pg:backups:capture warns, from what Describe read.
		progress(drill.Progress{Warning: true, Message: fmt.Sprintf("Continuous Protection is on for the database of %s: Heroku warns that logical backups (what a capture takes) of large databases are likely to fail; its physical backups are what protect it", app)})
	}
	t, err := p.data.capture(ctx, att.Addon.ID)
	if err != nil {
		return drill.Capture{}, p.tierOr(ctx, app, att.Addon.ID, p.interpret(err, op{what: "capture a backup of " + app,
			notFound: fmt.Sprintf("the database of %s is not yet provisioned: run `heroku addons:wait --app %s`", app, app)}))
	}
	billing := att.Addon.App.Name
	progress(drill.Progress{Message: fmt.Sprintf("backup %s of %s started", t.Name(), app)})
	t, err = p.waitTransfer(ctx, billing, t, progress)
	if err != nil {
		return drill.Capture{}, err
	}
	if !t.Succeeded {
		return drill.Capture{}, p.transferFailed(ctx, billing, t, fmt.Sprintf("backup %s of %s", t.Name(), app))
	}
	out := drill.Capture{Backup: backupOf(billing, t)}
	if fingerprint {
		after, err := p.Fingerprint(ctx, source)
		if err != nil {
			return drill.Capture{}, err
		}
		out.Source = &before
		out.Exact = sameContent(before, after)
	}
	return out, nil
}

// sameContent reports whether two fingerprints hold the same tables and
// schema.
func sameContent(a, b drill.Fingerprint) bool {
	return slices.Equal(a.Tables, b.Tables) && slices.Equal(a.Schema, b.Schema)
}

// maxPollFailures is how many failed polls of a transfer are tolerated, as
// the CLI tolerates them (a transfer just created may answer 404 for a
// while).
const maxPollFailures = 20

// waitTransfer polls a transfer under app until it finishes, reporting its
// progress. Up to maxPollFailures failed polls are tolerated, unless the
// token is refused.
func (p *Provider) waitTransfer(ctx context.Context, app string, t Transfer, progress drill.ProgressFunc) (Transfer, error) {
	w := p.newPoller()
	failures := 0
	for !t.Finished() {
		if err := w.wait(ctx); err != nil {
			return t, err
		}
		next, err := p.data.transfer(ctx, app, t.Num, false)
		if err != nil {
			derr := p.interpret(err, op{what: fmt.Sprintf("follow transfer %s of %s", t.Name(), app)})
			if failures++; failures > maxPollFailures || ctx.Err() != nil || drill.ErrorCode(derr) == drill.ECONFIG {
				return t, derr
			}
			progress(drill.Progress{Message: fmt.Sprintf("%s: poll failed (%d of %d tolerated): %s", t.Name(), failures, maxPollFailures, drill.ErrorMessage(derr))})
			continue
		}
		t = next
		msg := "pending"
		if !t.StartedAt.IsZero() {
			msg = "running"
		}
		progress(drill.Progress{Bytes: t.ProcessedBytes, Total: t.SourceBytes, Message: fmt.Sprintf("%s %s", t.Name(), msg)})
	}
	return t, nil
}

// transferFailed builds the error of a transfer that did not succeed, with
// the last lines of its log.
func (p *Provider) transferFailed(ctx context.Context, app string, t Transfer, what string) error {
	how := "failed"
	if !t.CanceledAt.IsZero() {
		how = "was canceled"
	}
	if v, err := p.data.transfer(ctx, app, t.Num, true); err == nil {
		t = v
	}
	logs := p.redactor.Redact(t.lastLogs(5))
	if logs == "" {
		logs = "no log lines"
	}
	return drill.Errorf(drill.EFAILED, "%s %s: %s (see `heroku pg:backups:info %s --app %s`)", what, how, logs, t.Name(), app)
}

// Restore restores backup b onto target, a scratch database of the drill.
// The backup's URL is secret and never reaches an error or a log. A restore
// that Heroku calls succeeded but that had warnings is a failure: pg_restore
// skipped something.
func (p *Provider) Restore(ctx context.Context, b drill.Backup, target drill.Database, progress drill.ProgressFunc) (drill.RestoreResult, error) {
	if progress == nil {
		progress = func(drill.Progress) {}
	}
	addon, atts, err := p.ownedAddonAttachments(ctx, target)
	if err != nil {
		return drill.RestoreResult{}, err
	}
	res, err := p.restoreInto(ctx, b, addon, target.Name, progress)
	if err != nil {
		return res, err
	}
	// A new database lacks the settings and comment pg_restore leaves out:
	// bring them from the database the backup was taken from.
	if app, ok := backupApp(b); ok {
		if err := p.carryProps(ctx, app, target, atts); err != nil {
			return res, err
		}
	}
	return res, nil
}

// restoreInto restores backup b onto addon, whose guard the caller passed,
// and waits for the transfer. targetName names it in messages.
func (p *Provider) restoreInto(ctx context.Context, b drill.Backup, addon *heroku.AddOn, targetName string, progress drill.ProgressFunc) (drill.RestoreResult, error) {
	if progress == nil {
		progress = func(drill.Progress) {}
	}
	target := drill.Database{ID: addon.ID, Name: targetName}
	app, ok := backupApp(b)
	if !ok || b.Num <= 0 {
		return drill.RestoreResult{}, drill.Errorf(drill.ENOTFOUND, "backup %s does not say which app holds it: pick it from `restore-drill backups APP`", b.ID)
	}
	src, err := p.data.transfer(ctx, app, b.Num, false)
	if err != nil {
		return drill.RestoreResult{}, p.interpret(err, op{what: fmt.Sprintf("read backup %s of %s", b.ID, app),
			notFound: fmt.Sprintf("backup %s not found for %s: list them with `restore-drill backups %s`", b.ID, app, app)})
	}
	if !src.IsBackup() || !src.Succeeded {
		return drill.RestoreResult{}, drill.Errorf(drill.EINVALID, "backup %s of %s did not complete successfully: choose a succeeded one from `restore-drill backups %s`", b.ID, app, app)
	}
	backupURL := src.ToURL
	if backupURL == "" {
		if backupURL, err = p.data.publicURL(ctx, app, b.Num); err != nil {
			return drill.RestoreResult{}, p.interpret(err, op{what: fmt.Sprintf("get the download URL of backup %s of %s", b.ID, app)})
		}
	}
	t, err := p.data.restore(ctx, addon.ID, backupURL)
	if err != nil {
		return drill.RestoreResult{}, p.interpret(err, op{what: fmt.Sprintf("restore backup %s onto %s", b.ID, target.Name),
			notFound: fmt.Sprintf("scratch database %s is not provisioned on Heroku's side yet", target.Name)})
	}
	billing := addon.App.Name
	progress(drill.Progress{Total: src.ProcessedBytes, Message: fmt.Sprintf("restore %s of %s onto %s started", t.Name(), b.ID, target.Name)})
	t, err = p.waitTransfer(ctx, billing, t, progress)
	if err != nil {
		if ctx.Err() != nil {
			// Stopping the watch does not stop Heroku's restore: cancel it,
			// and wait until it has stopped, so that nothing (a rollback,
			// maintenance off) runs beside a restore still writing.
			p.stopTransfer(context.WithoutCancel(ctx), billing, t)
		}
		return drill.RestoreResult{}, err
	}
	what := fmt.Sprintf("restore of %s onto %s", b.ID, target.Name)
	if !t.Succeeded {
		return drill.RestoreResult{}, p.transferFailed(ctx, billing, t, what)
	}
	if t.Warnings > 0 {
		var lines []string
		if v, err := p.data.transfer(ctx, billing, t.Num, true); err == nil {
			for _, l := range v.Logs[max(0, len(v.Logs)-5):] {
				lines = append(lines, p.redactor.Redact(l.Message))
			}
			t = v
		}
		return drill.RestoreResult{Warnings: lines}, drill.Errorf(drill.EFAILED,
			"the %s finished with %s, so pg_restore skipped something; Heroku itself calls this restore succeeded, the drill does not: %s (see `heroku pg:backups:info %s --app %s`)",
			what, drill.Plural(t.Warnings, "warning", "warnings"), p.redactor.Redact(t.lastLogs(5)), t.Name(), billing)
	}
	return drill.RestoreResult{}, nil
}

// stopTransfer cancels transfer t and waits, a bounded time, until Heroku
// reports it finished; it says whether it did.
func (p *Provider) stopTransfer(ctx context.Context, app string, t Transfer) (stopped bool) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	if err := p.data.cancel(ctx, app, t.UUID); err != nil {
		p.cfg.Logger.Error("cannot cancel a restore still running on Heroku", "transfer", t.Name(), "err", p.redactor.Redact(err.Error()))
		return false
	}
	now, err := p.waitTransfer(ctx, app, t, func(drill.Progress) {})
	if err != nil {
		p.cfg.Logger.Error("a cancelled restore did not stop in time", "transfer", t.Name(), "err", p.redactor.Redact(err.Error()))
		return false
	}
	return now.Finished()
}
