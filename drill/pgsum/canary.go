package pgsum

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// CanaryTable is the table, in schema public, that holds canaries.
const CanaryTable = "restore_drill_canary"

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
func canaryTable() string { return pgx.Identifier{"public", CanaryTable}.Sanitize() }

// WriteCanary creates the canary table in schema public if it does not exist
// and inserts c, committed when it returns. A drill id already written is an
// error (primary key violation).
func WriteCanary(ctx context.Context, conn *pgx.Conn, c Canary) error {
	if c.DrillID == "" || c.Token == "" {
		return errors.New("writing canary: drill id and token must not be empty")
	}
	err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+canaryTable()+` (
	drill_id text PRIMARY KEY,
	token text NOT NULL,
	created_at timestamptz NOT NULL
)`); err != nil {
			return fmt.Errorf("creating table %s: %w", canaryTable(), err)
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

// FindCanary reports whether the canary table holds a row with c's drill id
// and token. A missing table or row is false, not an error.
func FindCanary(ctx context.Context, conn *pgx.Conn, c Canary) (bool, error) {
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT pg_catalog.to_regclass($1) IS NOT NULL`, canaryTable()).Scan(&exists); err != nil {
		return false, fmt.Errorf("finding canary for drill %s: looking up table: %w", c.DrillID, err)
	}
	if !exists {
		return false, nil
	}
	var found bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM `+canaryTable()+` WHERE drill_id = $1 AND token = $2)`,
		c.DrillID, c.Token).Scan(&found); err != nil {
		return false, fmt.Errorf("finding canary for drill %s: %w", c.DrillID, err)
	}
	return found, nil
}
