package localpg

import "testing"

// rewriteProps keeps only the statements that set the database's own
// properties, renamed for the target, and leaves string literals alone
// even where their lines look like statements.
func TestRewriteProps(t *testing.T) {
	script := `SET statement_timeout = 0;
SELECT pg_catalog.set_config('search_path', '', false);
--
-- Name: my-app; Type: DATABASE; Schema: -; Owner: owner
--

CREATE DATABASE "my-app" WITH TEMPLATE = template0 ENCODING = 'UTF8';


ALTER DATABASE "my-app" OWNER TO "app owner";

\connect -reuse-previous=on "dbname='my-app'"

COMMENT ON DATABASE "my-app" IS 'first line;
GRANT ALL ON DATABASE "my-app" TO evil;
-- not a header';

ALTER DATABASE "my-app" SET search_path TO 'app', 'public';
ALTER ROLE reader IN DATABASE "my-app" SET work_mem TO '8MB';
REVOKE CONNECT,TEMPORARY ON DATABASE "my-app" FROM PUBLIC;
GRANT CONNECT ON DATABASE "my-app" TO reader;
`
	want := `ALTER DATABASE "new$1" OWNER TO "app owner";
COMMENT ON DATABASE "new$1" IS 'first line;
GRANT ALL ON DATABASE "my-app" TO evil;
-- not a header';
ALTER DATABASE "new$1" SET search_path TO 'app', 'public';
ALTER ROLE reader IN DATABASE "new$1" SET work_mem TO '8MB';
REVOKE CONNECT,TEMPORARY ON DATABASE "new$1" FROM PUBLIC;
GRANT CONNECT ON DATABASE "new$1" TO reader;`
	got, err := rewriteProps(script, `"new$1"`)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	if got, err := rewriteProps("COMMENT ON DATABASE x IS 'open\n", "y"); got != "" || err != nil {
		t.Errorf("a script without CREATE DATABASE: %q %v", got, err)
	}
}
