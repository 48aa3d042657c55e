package drill_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/restore-drill/restore-drill/drill"
)

// quote writes v as a quoted value: backslash and the quote escaped with a
// backslash, as libpq reads a keyword/value connection string.
func quote(v string, q byte) string {
	return string(q) + strings.NewReplacer(`\`, `\\`, string(q), `\`+string(q)).Replace(v) + string(q)
}

// TestRedactor_RemovesWholeQuotedPasswords: a quoted password is redacted
// to its closing quote, over escaped quotes and spaces, in single or double
// quotes, and to the end when it is never closed.
func TestRedactor_RemovesWholeQuotedPasswords(t *testing.T) {
	t.Parallel()
	r := drill.NewRedactor()
	for in, want := range map[string]string{
		`host=db password='it\'s secret' dbname=app`:   `host=db password=REDACTED dbname=app`,
		`host=db password="quoted secret" dbname=app`:  `host=db password=REDACTED dbname=app`,
		`password = 'a \\' b' user=x`:                  `password = REDACTED b' user=x`,
		`PASSWORD="say \"hi\" now" sslmode=require`:    `PASSWORD=REDACTED sslmode=require`,
		`connect: password='never closed and long`:     `connect: password=REDACTED`,
		`password='' user=x`:                           `password=REDACTED user=x`,
		`password=plain user=x`:                        `password=REDACTED user=x`,
		`dsn "host=h password='p@ss word' user=u" bad`: `dsn "host=h password=REDACTED user=u" bad`,
	} {
		if got := r.Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzRedactor: whatever the password, every form a credential takes in a
// connection string or URL comes out as exactly the text around it with
// REDACTED in its place.
func FuzzRedactor(f *testing.F) {
	for _, s := range []string{"hunter22", `it's secret`, `quoted "secret"`, `a\'b`, `\`, `'`, `x://u:p@h`, "p@ss:w@rd", "tab\there", "line\nbreak", "password=x"} {
		f.Add(s)
	}
	r := drill.NewRedactor()
	f.Fuzz(func(t *testing.T, p string) {
		u := url.URL{Scheme: "postgres", User: url.UserPassword("u", p), Host: "db.example.com:5432", Path: "/app"}
		forms := map[string]string{
			"dial " + u.String() + " failed":                 "dial postgres://u:REDACTED@db.example.com:5432/app failed",
			"host=db password=" + quote(p, '\'') + " user=u": "host=db password=REDACTED user=u",
			"host=db password=" + quote(p, '"') + " user=u":  "host=db password=REDACTED user=u",
			"error: password=" + quote(p, '\'')[:len(p)/2+1]: "error: password=REDACTED",
		}
		if p != "" && !strings.ContainsAny(p, " \t\n\v\f\r\x85\u00a0'\"") {
			forms["host=db password="+p+" user=u"] = "host=db password=REDACTED user=u"
		}
		for in, want := range forms {
			if got := r.Redact(in); got != want {
				t.Fatalf("Redact(%q) = %q, want %q", in, got, want)
			}
		}
	})
}
