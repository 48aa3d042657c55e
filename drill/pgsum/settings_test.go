package pgsum_test

import (
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/restore-drill/restore-drill/drill"
	"github.com/restore-drill/restore-drill/drill/drilltest"
	"github.com/restore-drill/restore-drill/drill/pgsum"
)

// settingsData has values whose text form depends on session settings.
const settingsData = `
CREATE SCHEMA other;
CREATE TABLE public.moments (
	tz timestamptz, ts timestamp, d date, iv interval, f8 float8, f4 real,
	b bytea, cash money, rc regclass, tr tstzrange, arr timestamptz[]
);
CREATE TABLE other.thing (k int);
INSERT INTO public.moments VALUES
	('2024-03-10 02:30:00+00', '2024-03-10 02:30:00', '2024-12-31', '1 year 2 days 03:04:05.6', 0.1, 0.1,
	 '\x00ff', 12.34, 'other.thing', '[2024-01-01 00:00+00, 2024-07-01 00:00+00)',
	 '{"2024-01-01 00:00+00","2024-07-01 12:00+00"}'),
	('1999-12-31 23:59:59.999999+00', '1999-12-31 23:59:59.999999', '2000-01-01', '-3 hours', 1e-7, 3.4e38,
	 'héllo', -1, 'public.moments', NULL, NULL),
	(NULL, NULL, NULL, NULL, 0.30000000000000004, 1.2345678, NULL, NULL, NULL, NULL, NULL);
`

// TestFingerprint_IgnoresSessionDefaults gives two copies of the same data
// opposite database defaults for every setting that changes text forms: a
// plain hash differs between them, the fingerprint does not.
func TestFingerprint_IgnoresSessionDefaults(t *testing.T) {
	t.Parallel()

	tokyo := drilltest.CreateDatabase(t, "pgsum_tokyo")
	newYork := drilltest.CreateDatabase(t, "pgsum_ny")
	for _, db := range []string{tokyo, newYork} {
		drilltest.Exec(t, db, settingsData)
	}
	drilltest.Exec(t, tokyo, `ALTER DATABASE `+pgx.Identifier{tokyo}.Sanitize()+` SET timezone = 'Asia/Tokyo';
ALTER DATABASE `+pgx.Identifier{tokyo}.Sanitize()+` SET datestyle = 'SQL, DMY';
ALTER DATABASE `+pgx.Identifier{tokyo}.Sanitize()+` SET intervalstyle = 'iso_8601';
ALTER DATABASE `+pgx.Identifier{tokyo}.Sanitize()+` SET extra_float_digits = -3;
ALTER DATABASE `+pgx.Identifier{tokyo}.Sanitize()+` SET bytea_output = 'escape';
ALTER DATABASE `+pgx.Identifier{tokyo}.Sanitize()+` SET search_path = other, public`)
	drilltest.Exec(t, newYork, `ALTER DATABASE `+pgx.Identifier{newYork}.Sanitize()+` SET timezone = 'America/New_York';
ALTER DATABASE `+pgx.Identifier{newYork}.Sanitize()+` SET datestyle = 'German, MDY';
ALTER DATABASE `+pgx.Identifier{newYork}.Sanitize()+` SET intervalstyle = 'sql_standard'`)

	// Under each database's own defaults (new connections pick them up) the
	// same rows print differently.
	naive := make(map[string]string)
	for _, db := range []string{tokyo, newYork} {
		var sum string
		err := drilltest.Connect(t, db).QueryRow(testContext(t),
			`SELECT sum(hashtextextended(t::text, 0))::text FROM public.moments t`).Scan(&sum)
		requireNoError(t, err)
		naive[db] = sum
	}
	if naive[tokyo] == naive[newYork] {
		t.Fatalf("the database defaults do not change the text form (both %s): the test proves nothing", naive[tokyo])
	}

	a := fingerprint(t, tokyo, pgsum.Options{})
	b := fingerprint(t, newYork, pgsum.Options{})
	requireEqual(t, 2, len(a.Tables), "tables")
	cmp := drill.Compare(a, b, true)
	if !cmp.OK() {
		t.Fatalf("fingerprints differ under different defaults: %s", cmp.Summary())
	}
	requireEqualSlices(t, a.Tables, b.Tables, "tables")
	requireEqualSlices(t, a.Schema, b.Schema, "schema")
}
