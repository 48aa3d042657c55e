package pgstate

import "context"

// AuditTamper tries to rewrite the audit log, for the append-only test.
func (s *Store) AuditTamper(ctx context.Context) error {
	_, err := s.pool.Exec(ctx, `UPDATE audit_log SET action = 'tampered'`)
	return err
}
