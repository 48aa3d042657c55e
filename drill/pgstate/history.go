package pgstate

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/restore-drill/restore-drill/drill"
	"github.com/restore-drill/restore-drill/drill/schedule"
)

// History returns the reports of app's last n finished drills, newest
// first.
func (s *Store) History(ctx context.Context, app string, n int) ([]*drill.Report, error) {
	rows, err := s.pool.Query(ctx, `SELECT report FROM drills
		WHERE app = $1 AND report IS NOT NULL ORDER BY started_at DESC LIMIT $2`, app, n)
	if err != nil {
		return nil, drill.Wrap(drill.ECONFIG, err, "cannot read the history of %s", app)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (*drill.Report, error) {
		var data []byte
		if err := r.Scan(&data); err != nil {
			return nil, err
		}
		var rep drill.Report
		return &rep, json.Unmarshal(data, &rep)
	})
}

// Report returns one drill's report. A drill still running has none yet:
// it comes back with its journaled steps and no result.
func (s *Store) Report(ctx context.Context, drillID string) (*drill.Report, error) {
	var data []byte
	var rec drill.DrillRecord
	var mode string
	err := s.pool.QueryRow(ctx, `SELECT report, drill_id, app, provider, mode, requester, started_at FROM drills WHERE drill_id = $1`, drillID).
		Scan(&data, &rec.DrillID, &rec.App, &rec.Provider, &mode, &rec.Requester, &rec.StartedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, drill.Errorf(drill.ENOTFOUND, "there is no drill %s in the state database", drillID)
	}
	if err != nil {
		return nil, drill.Wrap(drill.ECONFIG, err, "cannot read drill %s", drillID)
	}
	if data != nil {
		var rep drill.Report
		return &rep, json.Unmarshal(data, &rep)
	}
	steps, err := s.Steps(ctx, drillID)
	if err != nil {
		return nil, err
	}
	return &drill.Report{DrillID: rec.DrillID, App: rec.App, Provider: rec.Provider, Mode: drill.Mode(mode),
		Requester: rec.Requester, StartedAt: rec.StartedAt, Steps: steps}, nil
}

// SaveSchedule creates or replaces app's schedule.
func (s *Store) SaveSchedule(ctx context.Context, e schedule.Entry) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO schedules (app, spec, mode, channel, created_by, created_at)
		VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (app) DO UPDATE SET spec = $2, mode = $3, channel = $4, created_by = $5, created_at = $6, last_run = NULL`,
		e.App, e.Spec, string(e.Mode), e.Channel, e.CreatedBy, e.CreatedAt)
	if err != nil {
		return drill.Wrap(drill.EFAILED, err, "cannot save the schedule of %s", e.App)
	}
	return s.Audit(ctx, e.CreatedBy, "schedule", e.App, "", e.Spec+" "+string(e.Mode))
}

// DeleteSchedule removes app's schedule; it reports whether there was one.
func (s *Store) DeleteSchedule(ctx context.Context, app, by string) (bool, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM schedules WHERE app = $1`, app)
	if err != nil {
		return false, drill.Wrap(drill.EFAILED, err, "cannot remove the schedule of %s", app)
	}
	if tag.RowsAffected() == 0 {
		return false, nil
	}
	return true, s.Audit(ctx, by, "unschedule", app, "", "")
}

// Schedules lists every schedule.
func (s *Store) Schedules(ctx context.Context) ([]schedule.Entry, error) {
	rows, err := s.pool.Query(ctx, `SELECT app, spec, mode, channel, created_by, created_at, coalesce(last_run, 'epoch') FROM schedules ORDER BY app`)
	if err != nil {
		return nil, drill.Wrap(drill.ECONFIG, err, "cannot read the schedules")
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (schedule.Entry, error) {
		var e schedule.Entry
		var mode string
		var last time.Time
		err := r.Scan(&e.App, &e.Spec, &mode, &e.Channel, &e.CreatedBy, &e.CreatedAt, &last)
		e.Mode = drill.Mode(mode)
		if !last.Equal(time.Unix(0, 0)) {
			e.LastRun = last
		}
		return e, err
	})
}

// ClaimRun marks e as run at at, if no other process did since it was read.
func (s *Store) ClaimRun(ctx context.Context, e schedule.Entry, at time.Time) (bool, error) {
	var prev any
	if !e.LastRun.IsZero() {
		prev = e.LastRun
	}
	tag, err := s.pool.Exec(ctx, `UPDATE schedules SET last_run = $2 WHERE app = $1 AND last_run IS NOT DISTINCT FROM $3`, e.App, at, prev)
	if err != nil {
		return false, drill.Wrap(drill.EFAILED, err, "cannot claim the scheduled drill of %s", e.App)
	}
	return tag.RowsAffected() == 1, nil
}
