package heroku

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"time"

	heroku "github.com/heroku/heroku-go/v6"
)

// The Heroku Postgres data API (/client/v11/...) is not in heroku-go. This is
// a small typed client for the calls a drill makes; it goes through a second
// heroku-go Service pointed at the data API, so it shares the token, the
// Accept header and the retrying transport.

// Time is a data-API timestamp. The data API writes "2016-10-01 00:42:54
// +0000", which is not RFC 3339; Time accepts both, and null.
type Time struct{ time.Time }

const dataTimeLayout = "2006-01-02 15:04:05 -0700"

// UnmarshalJSON implements json.Unmarshaler.
func (t *Time) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		t.Time = time.Time{}
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("timestamp %s is not a string", clip(string(b)))
	}
	if s == "" {
		t.Time = time.Time{}
		return nil
	}
	for _, layout := range []string{dataTimeLayout, time.RFC3339Nano, "2006-01-02 15:04:05Z07:00", "2006-01-02T15:04:05 -0700"} {
		if v, err := time.Parse(layout, s); err == nil {
			t.Time = v
			return nil
		}
	}
	return fmt.Errorf("timestamp %q is in no known form", clip(s))
}

// MarshalJSON writes the data API's form.
func (t Time) MarshalJSON() ([]byte, error) {
	if t.IsZero() {
		return []byte("null"), nil
	}
	return json.Marshal(t.Format(dataTimeLayout))
}

// ptr returns a pointer to the time, nil when zero.
func (t Time) ptr() *time.Time {
	if t.IsZero() {
		return nil
	}
	v := t.UTC()
	return &v
}

// Transfer is a backup, restore or copy, as the data API reports it.
type Transfer struct {
	UUID           string `json:"uuid"`
	Num            int    `json:"num"`
	CreatedAt      Time   `json:"created_at"`
	StartedAt      Time   `json:"started_at"`
	FinishedAt     Time   `json:"finished_at"`
	CanceledAt     Time   `json:"canceled_at"`
	UpdatedAt      Time   `json:"updated_at"`
	DeletedAt      Time   `json:"deleted_at"`
	Succeeded      bool   `json:"succeeded"`
	Warnings       int    `json:"warnings"`
	SourceBytes    int64  `json:"source_bytes"`
	ProcessedBytes int64  `json:"processed_bytes"`
	FromName       string `json:"from_name"`
	FromType       string `json:"from_type"`
	ToName         string `json:"to_name"`
	ToType         string `json:"to_type"`
	// ToURL is where a backup is stored: a signed URL, a secret. Never log
	// or report it.
	ToURL    string `json:"to_url"`
	Schedule *struct {
		UUID string `json:"uuid"`
	} `json:"schedule"`
	Options struct {
		PgbackupsName string `json:"pgbackups_name"`
	} `json:"options"`
	Logs []TransferLog `json:"logs"`
}

// TransferLog is a line of a transfer's log (only with ?verbose=true).
type TransferLog struct {
	CreatedAt Time   `json:"created_at"`
	Level     string `json:"level"`
	Message   string `json:"message"`
}

// IsBackup reports whether t is a backup (pg_dump to storage), the only
// transfers a drill lists.
func (t Transfer) IsBackup() bool { return t.FromType == "pg_dump" && t.ToType == "gof3r" }

// Name is the transfer's name as the CLI prints it: a letter and the number
// zero-padded to three digits (b005; a005 for a scheduled backup, r for a
// restore, c for a copy).
func (t Transfer) Name() string {
	if t.Options.PgbackupsName != "" {
		return "o" + t.Options.PgbackupsName
	}
	letter := byte('b')
	switch {
	case t.FromType == "pg_dump" && t.ToType == "pg_restore":
		letter = 'c'
	case t.FromType == "pg_dump":
		if t.Schedule != nil {
			letter = 'a'
		}
	case t.ToType == "pg_restore":
		letter = 'r'
	}
	return fmt.Sprintf("%c%03d", letter, t.Num)
}

// Finished reports whether the transfer has ended, one way or another.
func (t Transfer) Finished() bool { return !t.FinishedAt.IsZero() || !t.CanceledAt.IsZero() }

// lastLogs returns the last n log messages, joined.
func (t Transfer) lastLogs(n int) string {
	logs := t.Logs
	if len(logs) > n {
		logs = logs[len(logs)-n:]
	}
	msgs := make([]string, 0, len(logs))
	for _, l := range logs {
		msgs = append(msgs, strings.TrimSpace(l.Message))
	}
	return strings.Join(msgs, " | ")
}

// TransferSchedule is a daily backup schedule.
type TransferSchedule struct {
	UUID     string `json:"uuid"`
	Name     string `json:"name"`
	Hour     int    `json:"hour"`
	Timezone string `json:"timezone"`
}

// WaitStatus is a database's readiness.
type WaitStatus struct {
	Waiting bool   `json:"waiting?"`
	Message string `json:"message"`
	Error   bool   `json:"error?"`
}

// DatabaseInfo is GET /client/v11/databases/{id}. Plan and Leader change
// type between tiers (an object or a string), so they stay raw.
type DatabaseInfo struct {
	AddonID         string          `json:"addon_id"`
	Name            string          `json:"name"`
	NumBytes        int64           `json:"num_bytes"`
	NumTables       int             `json:"num_tables"`
	PostgresVersion string          `json:"postgres_version"`
	Following       *string         `json:"following"`
	Waiting         bool            `json:"waiting?"`
	Plan            json.RawMessage `json:"plan"`
	Leader          json.RawMessage `json:"leader"`
	Info            []struct {
		Name   string `json:"name"`
		Values []any  `json:"values"`
	} `json:"info"`
}

// continuousProtection reports whether the database's info says
// "Continuous Protection: On", as pg:backups:capture reads it.
func (d DatabaseInfo) continuousProtection() bool {
	for _, i := range d.Info {
		if i.Name == "Continuous Protection" && len(i.Values) > 0 {
			return strings.Contains(fmt.Sprint(i.Values[0]), "On")
		}
	}
	return false
}

// PlanName returns the plan's name, whether Plan is a string or an object.
func (d DatabaseInfo) PlanName() string {
	var s string
	if json.Unmarshal(d.Plan, &s) == nil {
		return s
	}
	var o struct {
		Name string `json:"name"`
	}
	_ = json.Unmarshal(d.Plan, &o)
	return o.Name
}

// dataClient calls the data API.
type dataClient struct{ svc *heroku.Service }

func esc(s string) string { return url.PathEscape(s) }

func (c dataClient) capture(ctx context.Context, addonID string) (Transfer, error) {
	var t Transfer
	err := c.svc.Post(ctx, &t, "/client/v11/databases/"+esc(addonID)+"/backups", nil)
	return t, err
}

func (c dataClient) transfers(ctx context.Context, app string) ([]Transfer, error) {
	var ts []Transfer
	err := c.svc.Get(ctx, &ts, "/client/v11/apps/"+esc(app)+"/transfers", nil, nil)
	return ts, err
}

func (c dataClient) transfer(ctx context.Context, app string, num int, verbose bool) (Transfer, error) {
	var t Transfer
	path := fmt.Sprintf("/client/v11/apps/%s/transfers/%d", esc(app), num)
	if verbose {
		path += "?verbose=true"
	}
	err := c.svc.Get(ctx, &t, path, nil, nil)
	return t, err
}

func (c dataClient) publicURL(ctx context.Context, app string, num int) (string, error) {
	var out struct {
		URL string `json:"url"`
	}
	err := c.svc.Post(ctx, &out, fmt.Sprintf("/client/v11/apps/%s/transfers/%d/actions/public-url", esc(app), num), nil)
	return out.URL, err
}

func (c dataClient) restore(ctx context.Context, targetAddonID, backupURL string) (Transfer, error) {
	var t Transfer
	body := struct {
		BackupURL string `json:"backup_url"`
	}{backupURL}
	err := c.svc.Post(ctx, &t, "/client/v11/databases/"+esc(targetAddonID)+"/restores", body)
	return t, err
}

func (c dataClient) schedules(ctx context.Context, addonID string) ([]TransferSchedule, error) {
	var s []TransferSchedule
	err := c.svc.Get(ctx, &s, "/client/v11/databases/"+esc(addonID)+"/transfer-schedules", nil, nil)
	return s, err
}

// cancel stops a running transfer.
func (c dataClient) cancel(ctx context.Context, app string, uuid string) error {
	return c.svc.Post(ctx, nil, "/client/v11/apps/"+esc(app)+"/transfers/"+esc(uuid)+"/actions/cancel", nil)
}

// setSchedule upserts a database's daily backup schedule.
func (c dataClient) setSchedule(ctx context.Context, addonID string, s TransferSchedule, name string) error {
	return c.svc.Post(ctx, nil, "/client/v11/databases/"+esc(addonID)+"/transfer-schedules", struct {
		Hour         string `json:"hour"`
		Timezone     string `json:"timezone"`
		ScheduleName string `json:"schedule_name"`
	}{fmt.Sprint(s.Hour), s.Timezone, name})
}

func (c dataClient) waitStatus(ctx context.Context, addonID string) (WaitStatus, error) {
	var w WaitStatus
	err := c.svc.Get(ctx, &w, "/client/v11/databases/"+esc(addonID)+"/wait_status", nil, nil)
	return w, err
}

func (c dataClient) database(ctx context.Context, addonID string) (DatabaseInfo, error) {
	var d DatabaseInfo
	err := c.svc.Get(ctx, &d, "/client/v11/databases/"+esc(addonID), nil, nil)
	return d, err
}
