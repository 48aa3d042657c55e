// The Heroku Go buildpack reads these: build only the binary, with this Go.
// +heroku goVersion go1.26
// +heroku install ./cmd/restore-drill
module github.com/restore-drill/restore-drill

go 1.26.0

require (
	github.com/jackc/pgx/v5 v5.12.0
	github.com/kelseyhightower/envconfig v1.4.0
	golang.org/x/term v0.48.0
)

require (
	github.com/cenkalti/backoff v2.1.1+incompatible // indirect
	github.com/google/go-querystring v1.0.0 // indirect
	github.com/google/uuid v1.0.0 // indirect
	github.com/gorilla/websocket v1.5.3
	github.com/heroku/heroku-go/v6 v6.1.0 // indirect
	github.com/jackc/pgpassfile v1.0.0 // indirect
	github.com/jackc/pgservicefile v0.0.0-20240606120523-5a60cdf6a761 // indirect
	github.com/jackc/puddle/v2 v2.2.3 // indirect
	github.com/pborman/uuid v1.2.0 // indirect
	github.com/robfig/cron/v3 v3.0.1 // indirect
	github.com/slack-go/slack v0.35.0
	golang.org/x/sync v0.22.0 // indirect
	golang.org/x/sys v0.50.0 // indirect
	golang.org/x/text v0.41.0 // indirect
)
