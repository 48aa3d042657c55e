package pgsum

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/restore-drill/restore-drill/drill"
)

// CanarySchema is the drill's own schema, owned by the database owner, that
// holds the canary table. It is not one of the app's schemas: fingerprints
// leave it out, and a database without a public schema takes a canary too.
const CanarySchema = "restore_drill"

// CanaryTable is the table, in CanarySchema, that holds canaries.
const CanaryTable = "canary"

// ErrCanaryUnsafe is the cause of the drill.EREFUSED error returned when
// the canary table exists in a form the drill did not make (another owner,
// triggers, rules, other columns…): writing to it could run code its owner
// controls with the drill's privileges, so the drill refuses.
var ErrCanaryUnsafe = errors.New("the canary table is not the drill's")

// unsafe is the refusal for a canary schema or table the drill did not make.
func unsafe(format string, args ...any) error {
	return drill.Wrap(drill.EREFUSED, ErrCanaryUnsafe, format, args...)
}

// Canary is a row a drill writes to the source just before the backup, so
// that finding it in the restore proves the backup is the one just taken.
type Canary struct {
	// DrillID names the drill; it is the table's primary key.
	DrillID string
	// Token is a random value only the drill knows.
	Token string
	// At is when the drill wrote the canary.
	At time.Time
}

// canaryTable is CanaryTable qualified and quoted.
func canaryTable() string { return pgx.Identifier{CanarySchema, CanaryTable}.Sanitize() }

// WriteCanary inserts c into the canary table, committed when it returns,
// creating the schema and table, owned by the database's owner, if they do
// not exist. A drill id already written is an error (primary key violation).
//
// The drill's role is often a superuser, and the database's owner controls
// what its tables run on INSERT (triggers, rules, defaults, CHECK functions,
// index expressions). So the table is locked and checked to be exactly the
// drill's plain table before the row goes in; anything else is refused with
// ErrCanaryUnsafe, and no code of the owner runs.
func WriteCanary(ctx context.Context, conn *pgx.Conn, c Canary) error {
	if c.DrillID == "" || c.Token == "" {
		return errors.New("writing canary: drill id and token must not be empty")
	}
	err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		// An empty search_path: every name below resolves in pg_catalog or
		// is qualified, whatever the database's own settings say.
		if _, err := tx.Exec(ctx, `SET LOCAL search_path = ''`); err != nil {
			return err
		}
		var owner string
		var member bool
		if err := tx.QueryRow(ctx, `SELECT pg_catalog.pg_get_userbyid(d.datdba), pg_catalog.pg_has_role(d.datdba, 'MEMBER')
			FROM pg_catalog.pg_database d WHERE d.datname OPERATOR(pg_catalog.=) pg_catalog.current_database()`).Scan(&owner, &member); err != nil {
			return fmt.Errorf("finding the database owner: %w", err)
		}
		if !member {
			return unsafe("refusing to write the canary: the drill's role may not act as the database owner %q, who must own the canary schema %s", owner, CanarySchema)
		}
		// The schema and table are made as the owner, so they are the
		// owner's like the rest of the app's data.
		if _, err := tx.Exec(ctx, `SET LOCAL ROLE `+pgx.Identifier{owner}.Sanitize()); err != nil {
			return fmt.Errorf("acting as the database owner %q: %w", owner, err)
		}
		if _, err := tx.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+pgx.Identifier{CanarySchema}.Sanitize()); err != nil {
			return fmt.Errorf("creating schema %s: %w", CanarySchema, err)
		}
		if err := canarySchemaOwned(ctx, tx); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+canaryTable()+` (
	drill_id pg_catalog.text PRIMARY KEY,
	token pg_catalog.text NOT NULL,
	created_at pg_catalog.timestamptz NOT NULL
)`); err != nil {
			return fmt.Errorf("creating table %s: %w", canaryTable(), err)
		}
		// The lock keeps triggers, rules, indexes and policies from being
		// added between the check and the insert.
		if _, err := tx.Exec(ctx, `LOCK TABLE `+canaryTable()+` IN SHARE ROW EXCLUSIVE MODE`); err != nil {
			return fmt.Errorf("locking table %s: %w", canaryTable(), err)
		}
		if err := canaryTablePlain(ctx, tx); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO `+canaryTable()+` (drill_id, token, created_at) VALUES ($1, $2, $3)`,
			c.DrillID, c.Token, c.At); err != nil {
			return fmt.Errorf("inserting row: %w", err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("writing canary for drill %s: %w", c.DrillID, err)
	}
	return nil
}

// canarySchemaOwned refuses a canary schema someone other than the
// database owner owns.
func canarySchemaOwned(ctx context.Context, tx pgx.Tx) error {
	var owner, dbOwner string
	err := tx.QueryRow(ctx, `SELECT pg_catalog.pg_get_userbyid(n.nspowner), pg_catalog.pg_get_userbyid(d.datdba)
		FROM pg_catalog.pg_namespace n, pg_catalog.pg_database d
		WHERE n.nspname OPERATOR(pg_catalog.=) $1 AND d.datname OPERATOR(pg_catalog.=) pg_catalog.current_database()`, CanarySchema).Scan(&owner, &dbOwner)
	if err != nil {
		return fmt.Errorf("checking schema %s: %w", CanarySchema, err)
	}
	if owner != dbOwner {
		return unsafe("refusing to write the canary: schema %s belongs to %q, not to the database owner %q; drop it (the drill makes it again)", CanarySchema, owner, dbOwner)
	}
	return nil
}

// canaryTablePlain checks that the canary table is exactly what
// WriteCanary makes: a plain table of the database owner with its three
// columns, no defaults, no constraint or index but the primary key, no
// triggers, rules, policies or parents. An INSERT into it then runs no code
// but PostgreSQL's own.
func canaryTablePlain(ctx context.Context, tx pgx.Tx) error {
	var problem string
	err := tx.QueryRow(ctx, `
WITH t AS (
	SELECT c.* FROM pg_catalog.pg_class c
	WHERE c.oid OPERATOR(pg_catalog.=) pg_catalog.to_regclass($1)
)
SELECT CASE
	WHEN t.relkind OPERATOR(pg_catalog.<>) 'r' OR t.relispartition THEN 'it is not a plain table'
	WHEN t.relowner OPERATOR(pg_catalog.<>) (SELECT d.datdba FROM pg_catalog.pg_database d
		WHERE d.datname OPERATOR(pg_catalog.=) pg_catalog.current_database())
		THEN 'it belongs to ' || pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(t.relowner)) || ', not to the database owner'
	WHEN EXISTS (SELECT 1 FROM pg_catalog.pg_trigger g WHERE g.tgrelid OPERATOR(pg_catalog.=) t.oid) THEN 'it has triggers'
	WHEN EXISTS (SELECT 1 FROM pg_catalog.pg_rewrite r WHERE r.ev_class OPERATOR(pg_catalog.=) t.oid) THEN 'it has rules'
	WHEN t.relrowsecurity OR EXISTS (SELECT 1 FROM pg_catalog.pg_policy p WHERE p.polrelid OPERATOR(pg_catalog.=) t.oid) THEN 'it has row-level security'
	WHEN EXISTS (SELECT 1 FROM pg_catalog.pg_inherits i WHERE i.inhrelid OPERATOR(pg_catalog.=) t.oid) THEN 'it inherits from another table'
	WHEN (SELECT pg_catalog.array_agg(a.attname::pg_catalog.text || ' ' || a.atttypid::pg_catalog.regtype::pg_catalog.text ORDER BY a.attnum)
		FROM pg_catalog.pg_attribute a
		WHERE a.attrelid OPERATOR(pg_catalog.=) t.oid AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped
		  AND NOT a.atthasdef AND a.attgenerated OPERATOR(pg_catalog.=) '' AND a.attidentity OPERATOR(pg_catalog.=) '')
		IS DISTINCT FROM ARRAY['drill_id text', 'token text', 'created_at timestamp with time zone']
		OR (SELECT pg_catalog.count(*) FROM pg_catalog.pg_attribute a
		WHERE a.attrelid OPERATOR(pg_catalog.=) t.oid AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped) OPERATOR(pg_catalog.<>) 3
		THEN 'its columns are not (drill_id text, token text, created_at timestamptz) without defaults'
	WHEN (SELECT pg_catalog.count(*) FROM pg_catalog.pg_constraint k WHERE k.conrelid OPERATOR(pg_catalog.=) t.oid AND k.contype OPERATOR(pg_catalog.<>) 'n')
		OPERATOR(pg_catalog.<>) 1
		OR NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint k WHERE k.conrelid OPERATOR(pg_catalog.=) t.oid AND k.contype OPERATOR(pg_catalog.=) 'p')
		THEN 'it has constraints other than its primary key'
	WHEN (SELECT pg_catalog.count(*) FROM pg_catalog.pg_index x WHERE x.indrelid OPERATOR(pg_catalog.=) t.oid) OPERATOR(pg_catalog.<>) 1
		OR EXISTS (SELECT 1 FROM pg_catalog.pg_index x WHERE x.indrelid OPERATOR(pg_catalog.=) t.oid
			AND (NOT x.indisprimary OR x.indexprs IS NOT NULL OR x.indpred IS NOT NULL))
		THEN 'it has indexes other than its primary key'
	ELSE '' END
FROM t`, canaryTable()).Scan(&problem)
	if err != nil {
		return fmt.Errorf("checking table %s: %w", canaryTable(), err)
	}
	if problem != "" {
		return unsafe("refusing to write the canary to %s: %s, so writing to it could run code its owner controls; drop it (the drill makes it again)", canaryTable(), problem)
	}
	return nil
}

// FindCanary reports whether the canary table holds a row with c's drill id
// and token. A missing table or row is false, not an error; a canary
// "table" that is not a plain table (a view would run its owner's code) is
// refused with ErrCanaryUnsafe.
func FindCanary(ctx context.Context, conn *pgx.Conn, c Canary) (bool, error) {
	var found bool
	err := pgx.BeginTxFunc(ctx, conn, pgx.TxOptions{AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SET LOCAL search_path = ''`); err != nil {
			return err
		}
		var kind string
		err := tx.QueryRow(ctx, `SELECT c.relkind::pg_catalog.text FROM pg_catalog.pg_class c
			WHERE c.oid OPERATOR(pg_catalog.=) pg_catalog.to_regclass($1)`, canaryTable()).Scan(&kind)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("looking up table: %w", err)
		}
		if kind != "r" {
			return unsafe("refusing to read the canary from %s: it is not a plain table (relkind %s), so reading it could run code its owner controls", canaryTable(), kind)
		}
		return tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM `+canaryTable()+`
			WHERE drill_id OPERATOR(pg_catalog.=) $1 AND token OPERATOR(pg_catalog.=) $2)`, c.DrillID, c.Token).Scan(&found)
	})
	if err != nil {
		return false, fmt.Errorf("finding canary for drill %s: %w", c.DrillID, err)
	}
	return found, nil
}
