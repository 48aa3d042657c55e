package drilltest

import (
	"context"
	"strings"
	"testing"

	"github.com/restore-drill/restore-drill/drill"
)

// EscalateSQL creates public.escalate(), a function of the app's owner that
// tries to make role owner a superuser: it leaves any SET ROLE first (RESET
// ROLE works in a plain function) and swallows every error, so it never
// fails what calls it. Tests plant it in triggers, CHECK constraints and
// index expressions, run a drill, and call RequireNotSuperuser.
func EscalateSQL(owner string) string {
	return strings.ReplaceAll(`
CREATE FUNCTION public.escalate() RETURNS bool LANGUAGE plpgsql AS $$
BEGIN
	BEGIN EXECUTE 'RESET ROLE'; EXCEPTION WHEN OTHERS THEN NULL; END;
	BEGIN EXECUTE 'ALTER ROLE "OWNER" SUPERUSER'; EXCEPTION WHEN OTHERS THEN NULL; END;
	RETURN true;
END $$;`, "OWNER", owner)
}

// RequireNotSuperuser fails the test if role is a superuser.
func RequireNotSuperuser(tb testing.TB, role string) {
	tb.Helper()
	var super bool
	if err := Connect(tb, "").QueryRow(context.Background(), `SELECT rolsuper FROM pg_roles WHERE rolname = $1`, role).Scan(&super); err != nil {
		tb.Fatalf("look up role %s: %v", role, err)
	}
	if super {
		tb.Fatalf("role %s became a superuser through the drill", role)
	}
}

// RequireSafeDrill checks a drill of an app whose owner planted code: the
// owner is no superuser afterwards, and the drill passed (refused == "") or
// was refused with a message containing refused.
func RequireSafeDrill(tb testing.TB, owner string, rep *drill.Report, err error, refused string) {
	tb.Helper()
	RequireNotSuperuser(tb, owner)
	if refused == "" {
		if err != nil || rep.Result != drill.Passed {
			tb.Fatalf("drill did not pass: %v %+v", err, rep)
		}
		return
	}
	if drill.ErrorCode(err) != drill.EREFUSED || !strings.Contains(drill.ErrorMessage(err), refused) {
		tb.Fatalf("err %v (%s), want refused because %s", err, drill.ErrorCode(err), refused)
	}
}
