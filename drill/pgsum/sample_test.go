package pgsum_test

// sampleSchema builds a database with every case the fingerprint must get
// right. sampleTables lists the tables Fingerprint must report for it.
const sampleSchema = `
CREATE EXTENSION hstore;
CREATE SCHEMA sales;
CREATE SCHEMA "Ünïcode Schema";

CREATE TYPE sales.mood AS ENUM ('sad', 'ok', 'happy, really', 'it''s');
CREATE DOMAIN sales.code AS text CHECK (VALUE ~ '^[A-Z]+$');
CREATE TYPE sales.pair AS (x int, label text);
CREATE SEQUENCE sales.ticket_seq START 100 INCREMENT 5;
SELECT nextval('sales.ticket_seq') FROM generate_series(1, 3);

CREATE FUNCTION sales.touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	NEW.sku := upper(NEW.sku);
	RETURN NEW;
END $$;

CREATE TABLE sales.everything (
	id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	n numeric,
	n_huge numeric(1000, 500),
	f4 real,
	f8 double precision,
	j jsonb,
	js json,
	b bytea,
	ta text[],
	ia int[][],
	tz timestamptz,
	ts timestamp,
	d date,
	tm time,
	ttz timetz,
	iv interval,
	m sales.mood,
	c sales.code,
	p sales.pair,
	r int4range,
	tr tstzrange,
	u uuid,
	ip inet,
	cash money,
	flag boolean,
	x xml,
	h hstore,
	rc regclass,
	pt point,
	ci text COLLATE "C",
	doubled numeric GENERATED ALWAYS AS (n * 2) STORED,
	ticket int DEFAULT nextval('sales.ticket_seq')
);
INSERT INTO sales.everything (n, n_huge, f4, f8, j, js, b, ta, ia, tz, ts, d, tm, ttz, iv, m, c, p, r, tr, u, ip, cash, flag, x, h, rc, pt, ci) VALUES
	('NaN', 1234567890123456789012345678901234567890.000000000000000000000000000000000000001,
	 'Infinity', '-0', '{"b": 1, "a": [1, 2, {"c": null}], "é": "ü"}', '{"b":1,   "a":2}', '\x00ff10',
	 '{"a b","c,d",NULL,"\"q\""}', '{{1,2},{3,4}}', '2024-03-10 02:30:00+09', '2024-01-01 12:34:56.789',
	 '2024-02-29', '23:59:59.999999', '12:00+05:30', '1 year 2 mons 3 days 04:05:06.7', 'happy, really', 'ABC',
	 '(1,"x y")', '[1,10)', '[2024-01-01 00:00+00, 2024-06-01 00:00+02)', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
	 '192.168.0.1/24', 12.34, true, '<a b="1">t</a>', 'k=>v, "x y"=>NULL', 'sales.everything', '(0.1,-0)', 'Zürich'),
	(0.1, 1e-300, 0.1, 0.1, '[]', 'null', '\x', '{}', '{{NULL,2},{3,NULL}}', 'infinity', '-infinity',
	 'infinity', '00:00', '00:00+00', '-1 days +02:00', 'it''s', 'Z', '(,)', 'empty', '(,)',
	 '00000000-0000-0000-0000-000000000000', '::1', -0.01, false, '<x/>', '', 'pg_catalog.pg_class', '(1e300,3.4028235e38)', ''),
	(1.50, 0, '-Infinity', 1e308, '1.0', '1.0', '\xdeadbeef', '{"ü"}', '{}', '2000-01-01 00:00:00.000001+00',
	 '1999-12-31 23:59:59', '0001-01-01 BC', '24:00', '24:00-15:59', '0', 'sad', 'QQ', '(-1,"")', '(,)', '(,)',
	 'ffffffff-ffff-ffff-ffff-ffffffffffff', '10.0.0.0/8', 92233720368547758.07, NULL, NULL, NULL, NULL, NULL, NULL),
	(NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
	 NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);

CREATE TABLE sales.customer (id bigint PRIMARY KEY, name text NOT NULL UNIQUE);
INSERT INTO sales.customer VALUES (1, 'Ann'), (2, 'Bob');

CREATE TABLE sales."Order Items" (
	id serial PRIMARY KEY,
	customer_id bigint REFERENCES sales.customer,
	sku text NOT NULL,
	qty int NOT NULL DEFAULT 1 CHECK (qty > 0)
);
CREATE INDEX "Order Items sku" ON sales."Order Items" (lower(sku)) WHERE qty > 1;
CREATE TRIGGER touch BEFORE INSERT ON sales."Order Items" FOR EACH ROW EXECUTE FUNCTION sales.touch();
INSERT INTO sales."Order Items" (customer_id, sku, qty) VALUES (1, 'a-1', 1), (1, 'b-2', 3), (2, 'c-3', 2);

CREATE TABLE sales."tbl""quote" ("col""q" text, "Space Col" int);
INSERT INTO sales."tbl""quote" VALUES ('it''s "quoted"', 1), (E'tab\there', 2), (E'back\\slash', NULL);

CREATE TABLE sales.events (id bigint NOT NULL, kind text DEFAULT 'click', at date NOT NULL) PARTITION BY RANGE (at);
CREATE INDEX ON sales.events (kind);
ALTER TABLE sales.events ADD CONSTRAINT events_customer FOREIGN KEY (id) REFERENCES sales.customer;
CREATE TABLE sales.events_2023 PARTITION OF sales.events FOR VALUES FROM ('2023-01-01') TO ('2024-01-01');
CREATE TABLE sales.events_2024 PARTITION OF sales.events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE sales.events_default PARTITION OF sales.events DEFAULT;
-- a partition whose physical column order differs from its parent's
CREATE TABLE sales.events_2022 (at date NOT NULL, kind text, id bigint NOT NULL);
ALTER TABLE sales.events ATTACH PARTITION sales.events_2022 FOR VALUES FROM ('2022-01-01') TO ('2023-01-01');
INSERT INTO sales.events VALUES (1, 'view', '2022-05-01'), (1, 'click', '2023-05-01'), (2, 'view', '2024-05-01'),
	(2, 'buy', '2024-06-01'), (1, 'old', '1999-01-01');

CREATE VIEW sales.big_orders AS SELECT id, sku FROM sales."Order Items" WHERE qty > 1;
CREATE MATERIALIZED VIEW sales.order_count AS SELECT count(*) AS n FROM sales."Order Items";

CREATE TABLE "Ünïcode Schema"."Ärger Tabelle" ("ü" text, "Mixed Case" int);
INSERT INTO "Ünïcode Schema"."Ärger Tabelle" VALUES ('straße', 1), ('日本語', 2), (NULL, NULL);

CREATE TABLE public.dupes (a int, b text);
INSERT INTO public.dupes VALUES (1, 'x'), (1, 'x'), (2, NULL), (2, NULL);
CREATE TABLE public.empty (id int PRIMARY KEY);
CREATE TABLE public.nocols ();
INSERT INTO public.nocols SELECT FROM generate_series(1, 3);
CREATE UNLOGGED TABLE public.scratch (k int);
INSERT INTO public.scratch VALUES (1), (2);

-- an inheritance child whose column order pg_dump does not keep: d is
-- added to the parent after the child exists, so it follows the child's c
CREATE TABLE public.parent_t (a int, b text);
CREATE TABLE public.child_t (c int) INHERITS (public.parent_t);
ALTER TABLE public.parent_t ADD COLUMN d int;
INSERT INTO public.parent_t VALUES (1, 'p', 10);
INSERT INTO public.child_t (a, b, c, d) VALUES (2, 'c', 3, 4);
ALTER TABLE public.parent_t DROP COLUMN b;

-- an extension member: pg_dump leaves it to CREATE EXTENSION, so it is not
-- restored and must not be fingerprinted
CREATE TABLE public.ext_owned (k int);
INSERT INTO public.ext_owned VALUES (1);
ALTER EXTENSION hstore ADD TABLE public.ext_owned;

SELECT lo_from_bytea(424242, 'small large object');
SELECT lo_from_bytea(424243, '');
-- a sparse large object: its missing pages read as zeros
SELECT lo_put(lo_from_bytea(424244, 'head'), 10000, 'tail');
`

// sampleTables are the keys Fingerprint must report for sampleSchema (and
// the canary table the tests add).
func sampleTables() []string {
	return []string{
		`"pg_catalog"."pg_largeobject"`,
		`"public"."child_t"`,
		`"public"."dupes"`,
		`"public"."empty"`,
		`"public"."nocols"`,
		`"public"."parent_t"`,
		`"public"."scratch"`,
		`"sales"."Order Items"`,
		`"sales"."customer"`,
		`"sales"."events_2022"`,
		`"sales"."events_2023"`,
		`"sales"."events_2024"`,
		`"sales"."events_default"`,
		`"sales"."everything"`,
		`"sales"."order_count"`, // a populated materialized view
		`"sales"."tbl""quote"`,
		`"Ünïcode Schema"."Ärger Tabelle"`,
	}
}
