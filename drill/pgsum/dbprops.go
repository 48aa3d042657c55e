package pgsum

import (
	"context"
	"slices"

	"github.com/jackc/pgx/v5"
)

// propsQuery lists the database-level properties of the database with oid
// $1 (0: the database the session is on), one line each, in a form that
// compares across databases: "owner R", "comment C", "access ACL",
// "setting NAME=VALUE", "setting for role R: NAME=VALUE". The drill's own
// settings (restore_drill.*) are left out.
const propsQuery = `
WITH db AS (SELECT CASE WHEN $1::pg_catalog.oid = 0
	THEN (SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database())
	ELSE $1::pg_catalog.oid END AS oid)
SELECT 'owner ' || pg_catalog.pg_get_userbyid(d.datdba) FROM pg_catalog.pg_database d, db WHERE d.oid = db.oid
UNION ALL
SELECT 'comment ' || c FROM db, pg_catalog.shobj_description(db.oid, 'pg_database') c WHERE c IS NOT NULL
UNION ALL
SELECT 'access ' || coalesce(a::pg_catalog.text, '(default)')
	FROM db JOIN pg_catalog.pg_database d ON d.oid = db.oid LEFT JOIN LATERAL pg_catalog.unnest(d.datacl) a ON true
UNION ALL
SELECT CASE WHEN s.setrole = 0 THEN 'setting ' ELSE 'setting for role ' || pg_catalog.pg_get_userbyid(s.setrole) || ': ' END || c
	FROM db, pg_catalog.pg_db_role_setting s, pg_catalog.unnest(s.setconfig) c
	WHERE s.setdatabase = db.oid AND NOT pg_catalog.starts_with(c, 'restore_drill.')`

// DatabaseProps returns the sorted property lines (see propsQuery) of the
// database with oid, or of the database conn is on when oid is 0.
func DatabaseProps(ctx context.Context, conn *pgx.Conn, oid uint32) ([]string, error) {
	rows, err := conn.Query(ctx, propsQuery, oid)
	if err != nil {
		return nil, err
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, err
	}
	slices.Sort(lines)
	return lines, nil
}

// DiffProps returns the property lines of want not in got, and of got not
// in want.
func DiffProps(want, got []string) (missing, extra []string) {
	for _, w := range want {
		if !slices.Contains(got, w) {
			missing = append(missing, w)
		}
	}
	for _, g := range got {
		if !slices.Contains(want, g) {
			extra = append(extra, g)
		}
	}
	return missing, extra
}
