package localpg

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/restore-drill/restore-drill/drill"
	"github.com/restore-drill/restore-drill/drill/pgsum"
)

// Database-level properties (owner, comment, access, ALTER DATABASE … SET
// and ALTER ROLE … IN DATABASE … SET) are in every custom-format dump, but
// pg_restore emits them only with --create, which a restore into a database
// the drill made cannot use (reference/postgres.md). The provider copies
// them from the dump onto the new database, and checks the result against
// what the source had when the backup was captured: an app whose
// search_path is a database setting breaks on a restore without it.

// databaseProps returns the sorted property lines of the database oid
// (pgsum.DatabaseProps).
func (p *Provider) databaseProps(ctx context.Context, conn *pgx.Conn, oid uint32) ([]string, error) {
	lines, err := pgsum.DatabaseProps(ctx, conn, oid)
	if err != nil {
		return nil, p.interpret(err, "")
	}
	return lines, nil
}

// dumpEntry matches the table-of-contents lines (pg_restore -C -l) of a
// dump's database-level entries.
var dumpEntry = regexp.MustCompile(`^\d+; \d+ \d+ (DATABASE - |COMMENT - DATABASE |ACL - DATABASE |DATABASE PROPERTIES - )`)

// createDatabase finds the database's name, as the dump quotes it, in its
// CREATE DATABASE statement.
var createDatabase = regexp.MustCompile(`(?m)^CREATE DATABASE ((?:"(?:[^"]|"")+")|\S+) `)

// propsStatement matches a statement that names the dump's database
// (group 2) after a fixed head (group 1); quoted is the name as the dump
// quotes it.
func propsStatement(quoted string) *regexp.Regexp {
	return regexp.MustCompile(`^(ALTER DATABASE |COMMENT ON DATABASE |ALTER ROLE (?:"(?:[^"]|"")+"|\S+) IN DATABASE |(?:GRANT|REVOKE) [A-Z, ]+ ON DATABASE )(` + regexp.QuoteMeta(quoted) + `) `)
}

// dumpedProps returns the SQL with which the dump file sets its database's
// properties, rewritten to set them on the database called target: the
// owner first, then the comment, settings and access, as pg_restore
// --create would.
func (p *Provider) dumpedProps(ctx context.Context, file, target string) (string, error) {
	list, err := p.runTool(ctx, p.cfg.PgRestore, nil, "--create", "--list", file)
	if err != nil {
		return "", drill.Wrap(drill.EFAILED, err, "cannot read the table of contents of %s: %s", file, toolMessage(err))
	}
	var keep []string
	for _, l := range strings.Split(string(list), "\n") {
		if dumpEntry.MatchString(l) {
			keep = append(keep, l)
		}
	}
	if len(keep) == 0 {
		return "", nil // a dump of an older pg_dump, or of a table: nothing to carry
	}
	tmp, err := os.CreateTemp("", "restore-drill-props-*.list")
	if err != nil {
		return "", drill.Wrap(drill.EFAILED, err, "cannot write a restore list")
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.WriteString(strings.Join(keep, "\n") + "\n")
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", drill.Wrap(drill.EFAILED, err, "cannot write a restore list")
	}
	out, err := p.runTool(ctx, p.cfg.PgRestore, nil, "--create", "--file=-", "--use-list="+tmp.Name(), file)
	if err != nil {
		return "", drill.Wrap(drill.EFAILED, err, "cannot read the database properties in %s: %s", file, toolMessage(err))
	}
	return rewriteProps(string(out), ident(target))
}

// rewriteProps keeps, from pg_restore --create's script, the statements
// that set the database's properties (not CREATE DATABASE, \connect or the
// session's SETs), each naming target instead of the dumped database.
// Statements run on until a line ends with ";" outside a string literal.
func rewriteProps(script, target string) (string, error) {
	m := createDatabase.FindStringSubmatch(script)
	if m == nil {
		return "", nil
	}
	stmt := propsStatement(m[1])
	var out []string
	var cur []string
	inLiteral := false
	for _, line := range strings.Split(script, "\n") {
		if len(cur) == 0 && !inLiteral {
			if !stmt.MatchString(line) {
				continue
			}
			line = stmt.ReplaceAllString(line, "${1}"+strings.ReplaceAll(target, "$", "$$")+" ")
		}
		cur = append(cur, line)
		if strings.Count(line, "'")%2 == 1 {
			inLiteral = !inLiteral
		}
		if !inLiteral && strings.HasSuffix(line, ";") {
			out = append(out, strings.Join(cur, "\n"))
			cur = nil
		}
	}
	if len(cur) > 0 {
		return "", fmt.Errorf("the dump's database properties end in an unfinished statement")
	}
	return strings.Join(out, "\n"), nil
}

// carryProps sets the dump's database-level properties on the database
// called name (oid), and checks them against want, the source's properties
// when the backup was captured (nil for backups captured before the
// provider kept them). Any difference fails the restore, named.
func (p *Provider) carryProps(ctx context.Context, b drill.Backup, file, name string, oid uint32, want []string) error {
	sql, err := p.dumpedProps(ctx, file, name)
	if err != nil {
		return err
	}
	return p.withAdmin(ctx, func(conn *pgx.Conn) error {
		if sql != "" {
			if _, err := conn.Exec(ctx, sql); err != nil {
				return drill.Wrap(drill.EFAILED, err, "the restore of %s onto %s could not set the database's own properties (owner, comment, settings, access), so it is a failed restore: %s",
					b.ID, name, p.redactor.Redact(err.Error()))
			}
		}
		if want == nil {
			return nil
		}
		got, err := p.databaseProps(ctx, conn, oid)
		if err != nil {
			return err
		}
		missing, extra := pgsum.DiffProps(want, got)
		if len(missing) == 0 && len(extra) == 0 {
			return nil
		}
		return drill.Errorf(drill.EFAILED, "the restore of %s onto %s does not carry the source database's own properties: missing %s; unexpected %s",
			b.ID, name, listOrNone(missing), listOrNone(extra))
	})
}

func listOrNone(lines []string) string {
	if len(lines) == 0 {
		return "none"
	}
	return strings.Join(lines, ", ")
}
