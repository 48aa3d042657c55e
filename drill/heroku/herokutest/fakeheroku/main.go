// Command fakeheroku starts the fake Heroku of package herokutest by hand,
// with one app, so the restore-drill binary can be pointed at it:
//
//	go run ./drill/heroku/herokutest/fakeheroku -addr 127.0.0.1:5005 -app demo-app -sql demo.sql
//	HEROKU_API_URL=http://127.0.0.1:5005 HEROKU_DATA_API_URL=http://127.0.0.1:5005 \
//	  HEROKU_API_KEY=x restore-drill backups demo-app --provider heroku
//
// Its databases live on the local Postgres (TEST_DATABASE_URL, else the
// libpq defaults) and are dropped when it stops (Ctrl-C).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/restore-drill/restore-drill/drill/heroku/herokutest"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "fakeheroku:", err)
		os.Exit(1)
	}
}

func run() error {
	addr := flag.String("addr", "127.0.0.1:5005", "address to listen on")
	appName := flag.String("app", "demo-app", "the app to create")
	sqlFile := flag.String("sql", "", "SQL file that fills the app's database (a small demo table when empty)")
	key := flag.String("key", "", "the only API key accepted (any when empty)")
	workers := flag.Int("workers", 1, "quantity of the app's worker process type")
	plan := flag.String("plan", "essential-0", "the plan of the app's database (standard-0 and up can have a pooler)")
	pooler := flag.Bool("pooler", false, "attach the database's connection pooler as DATABASE_CONNECTION_POOL")
	releasePhase := flag.Duration("release-phase", 0, "give the app a release process type whose release phase takes this long (0: none)")
	flag.Parse()
	sql := `CREATE TABLE drill_items (id int PRIMARY KEY, note text);
INSERT INTO drill_items SELECT g, 'item ' || g FROM generate_series(1, 100) g;`
	if *sqlFile != "" {
		b, err := os.ReadFile(*sqlFile)
		if err != nil {
			return err
		}
		sql = string(b)
	}
	s, err := herokutest.Start(herokutest.Config{Addr: *addr, APIKey: *key})
	if err != nil {
		return err
	}
	defer s.Close()
	formation := map[string]int{"web": 1}
	if *workers > 0 {
		formation["worker"] = *workers
	}
	if *releasePhase > 0 {
		formation["release"] = 0
		s.SetReleasePhase(*releasePhase)
	}
	if _, err := s.AddApp(*appName, herokutest.AppOptions{SQL: sql, Formation: formation, Plan: *plan, Pooler: *pooler,
		Backups: []time.Duration{3 * time.Hour}}); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "fake Heroku at %s with app %s; stop with Ctrl-C\n", s.URL, *appName)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	return nil
}
