package drill

import (
	"regexp"
	"strings"
)

// Redactor removes credentials from text before it reaches a log line, a
// message or a report: passwords in URLs and connection strings, tokens, and
// signed download URLs.
type Redactor struct {
	patterns []redaction
	secrets  []string
}

type redaction struct {
	re   *regexp.Regexp
	with string
}

// NewRedactor returns a Redactor for the credential shapes the drill meets.
func NewRedactor() *Redactor {
	return &Redactor{patterns: []redaction{
		// scheme://user:password@host
		// (greedy up to the last @ before the host, so that an unencoded
		// @ in the password is covered too)
		{regexp.MustCompile(`([a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]*:)\S*@`), "${1}REDACTED@"},
		// password=... in a keyword/value connection string. A quoted
		// value runs to its closing quote, over backslash escapes
		// ('it\'s secret'), or to the end of the text when it is never
		// closed.
		{regexp.MustCompile(`(?i)(password\s*=\s*)('(?:[^'\\]|\\(?s:.))*(?:'|\\?\z)|"(?:[^"\\]|\\(?s:.))*(?:"|\\?\z)|\S+)`), "${1}REDACTED"},
		// Slack and Heroku tokens
		{regexp.MustCompile(`xox[abposr]-[A-Za-z0-9-]+|xapp-[A-Za-z0-9-]+`), "REDACTED-TOKEN"},
		{regexp.MustCompile(`HRKU-[A-Za-z0-9_-]+`), "REDACTED-TOKEN"},
		// signed URLs (S3 and the like): drop the query string
		{regexp.MustCompile(`(https?://[^\s?]+)\?[^\s]*(X-Amz-|Signature|signature|token|Token)[^\s]*`), "${1}?REDACTED"},
	}}
}

// AddSecret makes Redact replace every occurrence of secret, whatever its
// shape (an API key, a password read from configuration). Empty and very
// short values are ignored, since replacing them would mangle ordinary text.
func (r *Redactor) AddSecret(secret string) {
	if len(secret) >= 6 {
		r.secrets = append(r.secrets, secret)
	}
}

// Redact returns s with every credential replaced.
func (r *Redactor) Redact(s string) string {
	for _, secret := range r.secrets {
		s = strings.ReplaceAll(s, secret, "REDACTED")
	}
	for _, p := range r.patterns {
		s = p.re.ReplaceAllString(s, p.with)
	}
	return s
}
