package pgstate

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/jackc/pgx/v5"

	"github.com/restore-drill/restore-drill/drill"
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
