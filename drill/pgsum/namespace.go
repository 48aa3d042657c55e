package pgsum

import "fmt"

// userNamespace is a SQL condition on pg_namespace alias n that keeps the
// app's schemas a dump carries: all but the system ones, the per-session
// temporary ones and the drill's own (CanarySchema), whose canary rows
// differ from drill to drill.
const userNamespace = `n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast', '` + CanarySchema + `')
	AND n.nspname OPERATOR(pg_catalog.!~) '^pg_(toast_)?temp_'`

// notExtensionMember returns a SQL condition that is true when the object
// oidExpr of system catalog catalog (e.g. "pg_class") does not belong to an
// extension: pg_dump leaves extension members to CREATE EXTENSION.
func notExtensionMember(catalog, oidExpr string) string {
	return fmt.Sprintf(`NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend e
	WHERE e.classid = 'pg_catalog.%s'::pg_catalog.regclass AND e.objid = %s AND e.deptype = 'e')`, catalog, oidExpr)
}
