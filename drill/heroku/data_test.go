package heroku_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/restore-drill/restore-drill/drill"
	"github.com/restore-drill/restore-drill/drill/heroku"
)

func TestTime_AcceptsDataAPIAndRFC3339(t *testing.T) {
	t.Parallel()
	want := time.Date(2016, 10, 1, 0, 42, 54, 0, time.UTC)
	for _, tt := range []struct {
		name, in string
		want     time.Time
		err      bool
	}{
		{"DataAPI", `"2016-10-01 00:42:54 +0000"`, want, false},
		{"DataAPIOffset", `"2016-10-01 02:42:54 +0200"`, want, false},
		{"RFC3339", `"2016-10-01T00:42:54Z"`, want, false},
		{"Null", `null`, time.Time{}, false},
		{"Empty", `""`, time.Time{}, false},
		{"Garbage", `"yesterday"`, time.Time{}, true},
		{"Number", `12`, time.Time{}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var got heroku.Time
			err := json.Unmarshal([]byte(tt.in), &got)
			if (err != nil) != tt.err {
				t.Fatalf("err %v, want error %v", err, tt.err)
			}
			if !tt.err && !got.Equal(tt.want) {
				t.Errorf("got %v, want %v", got.Time, tt.want)
			}
		})
	}
}

func TestDatabaseInfo_PlanIsStringOrObject(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ in, want string }{
		{`{"plan":"essential-0","leader":"x"}`, "essential-0"},
		{`{"plan":{"id":"p1","name":"standard-0"},"leader":{"addon_id":"a"}}`, "standard-0"},
		{`{"plan":null}`, ""},
	} {
		var d heroku.DatabaseInfo
		if err := json.Unmarshal([]byte(tt.in), &d); err != nil {
			t.Fatalf("%s: %v", tt.in, err)
		}
		if got := d.PlanName(); got != tt.want {
			t.Errorf("%s: plan %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestTransfer_NamesAndKinds(t *testing.T) {
	t.Parallel()
	sched := &struct {
		UUID string `json:"uuid"`
	}{UUID: "s"}
	for _, tt := range []struct {
		t      heroku.Transfer
		name   string
		backup bool
	}{
		{heroku.Transfer{Num: 5, FromType: "pg_dump", ToType: "gof3r"}, "b005", true},
		{heroku.Transfer{Num: 1234, FromType: "pg_dump", ToType: "gof3r", Schedule: sched}, "a1234", true},
		{heroku.Transfer{Num: 7, FromType: "pg_dump", ToType: "pg_restore"}, "c007", false},
		{heroku.Transfer{Num: 8, FromType: "htcat", ToType: "pg_restore"}, "r008", false},
	} {
		if got := tt.t.Name(); got != tt.name || tt.t.IsBackup() != tt.backup {
			t.Errorf("%+v: name %s backup %v, want %s %v", tt.t, got, tt.t.IsBackup(), tt.name, tt.backup)
		}
	}
}

func TestCheckAppName(t *testing.T) {
	t.Parallel()
	p, err := heroku.New(heroku.Config{APIKey: "k"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		ok   bool
	}{
		{"demo-app", true}, {"ab1", true}, {"a1", false}, {"a", false}, {"Demo", false}, {"1app", false}, {"demo-", false},
		{"my_app", false}, {"abcdefghijabcdefghijabcdefghij", true}, {"abcdefghijabcdefghijabcdefghijk", false}, {"x; drop", false},
	} {
		err := p.CheckAppName(tt.name)
		if (err == nil) != tt.ok {
			t.Errorf("%q: err %v, want ok %v", tt.name, err, tt.ok)
		}
		if err != nil && drill.ErrorCode(err) != drill.EINVALID {
			t.Errorf("%q: code %s", tt.name, drill.ErrorCode(err))
		}
	}
}

func TestNew_NeedsAnAPIKey(t *testing.T) {
	t.Parallel()
	_, err := heroku.New(heroku.Config{})
	if drill.ErrorCode(err) != drill.ECONFIG || !drill.IsUsage(err) {
		t.Fatalf("err %v, want a config error", err)
	}
	if msg := drill.ErrorMessage(err); msg == "" || msg[:24] != "HEROKU_API_KEY is not se" {
		t.Errorf("message %q", msg)
	}
}
