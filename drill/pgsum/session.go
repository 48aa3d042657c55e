package pgsum

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// applicationName is the application_name every fingerprint connection
// reports, so that the drill's sessions are recognisable in
// pg_stat_activity.
const applicationName = "restore-drill"

// SessionSettings returns the SET LOCAL statements that make the text form of
// every row the same whatever the server, database or role defaults are:
// dates and times print in UTC and ISO form, floats print shortest-exact,
// bytea prints as hex, money prints without a locale, and regclass or
// format_type output is always schema-qualified (empty search_path).
// row_security is off so that a row-level security policy makes the
// fingerprint fail instead of silently hiding rows, as pg_dump does.
//
// extra_float_digits is 3, not 1: from PostgreSQL 12 every positive value
// selects the same shortest-exact output, and on older servers 3 is the one
// that round-trips.
func SessionSettings() []string {
	return []string{
		"SET LOCAL TimeZone = 'UTC'",
		"SET LOCAL DateStyle = 'ISO, YMD'",
		"SET LOCAL IntervalStyle = 'postgres'",
		"SET LOCAL extra_float_digits = 3",
		"SET LOCAL bytea_output = 'hex'",
		"SET LOCAL lc_monetary = 'C'",
		"SET LOCAL search_path = ''",
		"SET LOCAL row_security = off",
	}
}

// sessionLimits lifts the timeouts a database or role may set by default: a
// fingerprint of a large table takes as long as it takes (the caller bounds it
// with ctx), and the leading session sits idle in its transaction while the
// others read its snapshot. lock_timeout is left alone on purpose.
func sessionLimits() []string {
	return []string{
		"SET LOCAL statement_timeout = 0",
		"SET LOCAL idle_in_transaction_session_timeout = 0",
	}
}

// validateSnapshot rejects an id that pg_export_snapshot() could not have
// returned: it must match ^[0-9A-F]+-[0-9A-F]+-[0-9]+$ (e.g.
// 00000003-00003450-1). SET TRANSACTION SNAPSHOT takes no bind parameter, so
// nothing else may reach it. The empty id (no snapshot) is valid.
func validateSnapshot(id string) error {
	if id == "" {
		return nil
	}
	parts := strings.Split(id, "-")
	ok := len(parts) == 3 &&
		allOf(parts[0], "0123456789ABCDEF") &&
		allOf(parts[1], "0123456789ABCDEF") &&
		allOf(parts[2], "0123456789")
	if !ok {
		return fmt.Errorf("snapshot id %q is not of the form pg_export_snapshot() returns (like 00000003-00003450-1)", id)
	}
	return nil
}

// allOf reports whether s is not empty and made only of bytes in set.
func allOf(s, set string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if strings.IndexByte(set, s[i]) < 0 {
			return false
		}
	}
	return true
}

// session is one connection inside a read-only repeatable-read transaction
// with SessionSettings applied.
type session struct {
	conn *pgx.Conn
	tx   pgx.Tx
}

// openSession connects with a copy of cfg, begins the transaction, imports
// snapshot when it is not empty, and applies the settings.
func openSession(ctx context.Context, cfg *pgx.ConnConfig, snapshot string) (*session, error) {
	if err := validateSnapshot(snapshot); err != nil {
		return nil, err
	}
	cfg = cfg.Copy()
	if cfg.RuntimeParams == nil {
		cfg.RuntimeParams = map[string]string{}
	}
	if !strings.HasPrefix(cfg.RuntimeParams["application_name"], applicationName) {
		cfg.RuntimeParams["application_name"] = applicationName // the caller may name the drill too
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connecting to database %s: %w", cfg.Database, err)
	}
	s := &session{conn: conn}
	if err := s.begin(ctx, snapshot); err != nil {
		s.close(ctx)
		return nil, err
	}
	return s, nil
}

func (s *session) begin(ctx context.Context, snapshot string) error {
	tx, err := s.conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return fmt.Errorf("beginning read-only repeatable-read transaction: %w", err)
	}
	s.tx = tx
	if snapshot != "" {
		// SET TRANSACTION SNAPSHOT must come before any query of the transaction.
		if _, err := tx.Exec(ctx, "SET TRANSACTION SNAPSHOT '"+snapshot+"'"); err != nil {
			return fmt.Errorf("importing snapshot %s: %w", snapshot, err)
		}
	}
	// Without arguments pgx sends this as one simple-protocol round trip.
	sets := strings.Join(append(SessionSettings(), sessionLimits()...), "; ")
	if _, err := tx.Exec(ctx, sets); err != nil {
		return fmt.Errorf("applying session settings: %w", err)
	}
	return nil
}

// exportSnapshot exports the session's snapshot so that other sessions can
// read exactly what it reads. It stays valid while s is open.
func (s *session) exportSnapshot(ctx context.Context) (string, error) {
	var id string
	if err := s.tx.QueryRow(ctx, "SELECT pg_catalog.pg_export_snapshot()").Scan(&id); err != nil {
		return "", fmt.Errorf("exporting snapshot: %w", err)
	}
	return id, nil
}

// close ends the transaction (it only read) and the connection.
func (s *session) close(ctx context.Context) {
	// Closing the connection ends the transaction; a cancelled ctx only
	// skips the polite Terminate message.
	_ = s.conn.Close(ctx)
}
