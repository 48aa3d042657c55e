// Package drill is the domain of restore-drill: the steps of a restore drill,
// their undo, the events they emit, the confirmations they need and the report
// they end in. It speaks to platforms only through Provider and to people only
// through Confirmer and Sink; it imports no Slack, Heroku, Postgres driver or
// terminal code.
package drill

import (
	"crypto/rand"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Mode is how far a drill goes.
type Mode string

const (
	// ModeVerify restores onto a scratch database and compares; production is
	// only read, apart from one canary row.
	ModeVerify Mode = "verify"
	// ModeFull follows the seed to the letter: maintenance on, promote the
	// restored database, check it serves, promote the original back.
	ModeFull Mode = "full"
)

// ParseMode reads a mode name.
func ParseMode(s string) (Mode, error) {
	switch Mode(s) {
	case ModeVerify, ModeFull:
		return Mode(s), nil
	}
	return "", Errorf(EINVALID, "%q is not a mode: use verify or full", clip(s))
}

// BackupKind says which backup a drill restores.
type BackupKind string

const (
	// BackupFresh captures a new backup during the drill.
	BackupFresh BackupKind = "fresh"
	// BackupLatest takes the newest successful backup.
	BackupLatest BackupKind = "latest"
	// BackupByID takes the backup with the given number.
	BackupByID BackupKind = "id"
)

// BackupRef names the backup a drill restores.
type BackupRef struct {
	Kind BackupKind
	// Num is the backup's number when Kind is BackupByID. As in the Heroku
	// CLI, the letter of an id such as b002 is decoration: the number is the
	// id within the app.
	Num int
	// Name is a legacy backup's name when Kind is BackupByID and Num is 0:
	// "o" and the name PGBackups gave it (ob001), as the Heroku CLI shows
	// it. It is found by name in the app's list of backups.
	Name string `json:",omitempty"`
}

func (r BackupRef) String() string {
	if r.Kind == BackupByID {
		if r.Name != "" {
			return r.Name
		}
		return FormatBackupID('b', r.Num)
	}
	return string(r.Kind)
}

var (
	backupIDPattern = regexp.MustCompile(`^([abcr]?)([0-9]{1,9})$`)
	legacyIDPattern = regexp.MustCompile(`^o[a-z][0-9]{1,9}$`)
)

// ParseBackupRef reads "fresh", "latest", a backup id such as b002, a005
// or 2, or a legacy backup's name such as ob001.
func ParseBackupRef(s string) (BackupRef, error) {
	switch BackupKind(s) {
	case BackupFresh, BackupLatest:
		return BackupRef{Kind: BackupKind(s)}, nil
	}
	if l := strings.ToLower(s); legacyIDPattern.MatchString(l) {
		return BackupRef{Kind: BackupByID, Name: l}, nil
	}
	m := backupIDPattern.FindStringSubmatch(strings.ToLower(s))
	if m == nil {
		return BackupRef{}, Errorf(EINVALID, "%q is not a backup: use fresh, latest, or an id such as b002", clip(s))
	}
	n, err := strconv.Atoi(m[2])
	if err != nil || n <= 0 {
		return BackupRef{}, Errorf(EINVALID, "%q is not a backup: ids count from b001", clip(s))
	}
	return BackupRef{Kind: BackupByID, Num: n}, nil
}

// FormatBackupID formats a backup id the way the Heroku CLI does: a letter and
// the number zero-padded to at least three digits.
func FormatBackupID(letter byte, num int) string {
	return fmt.Sprintf("%c%03d", letter, num)
}

// Options are the inputs of a drill.
type Options struct {
	App    string
	Mode   Mode
	Backup BackupRef
	// Keep leaves the scratch database in place at the end.
	Keep bool
	// DrillID names the drill; NewDrillID makes one when empty.
	DrillID string
	// Requester is who asked for the drill (a Slack user id, or the OS user).
	Requester string
}

// NewDrillID returns a short random id such as d7k2m9qx: a letter and seven
// lowercase letters or digits, safe in a database name and easy to type.
func NewDrillID() string {
	const alphabet = "abcdefghijkmnpqrstuvwxyz23456789"
	var b [7]byte
	_, _ = rand.Read(b[:])
	out := []byte{'d'}
	for _, c := range b {
		out = append(out, alphabet[int(c)%len(alphabet)])
	}
	return string(out)
}

var drillIDPattern = regexp.MustCompile(`^d[a-z0-9]{7}$`)

// ValidDrillID reports whether s has the shape NewDrillID makes.
func ValidDrillID(s string) bool { return drillIDPattern.MatchString(s) }

// clip shortens user input quoted back in an error message.
func clip(s string) string { return Clip(s, 40) }

// Clip keeps the first n characters of s, marking a cut with "…".
func Clip(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n]) + "…"
	}
	return s
}
