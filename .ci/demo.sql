-- The demo app's database: a small shop with the shapes a real one has
-- (jsonb, numeric, bytea, arrays, enums, a partitioned table, a table
-- without a primary key), about 150k rows.
CREATE TYPE order_status AS ENUM ('new', 'paid', 'shipped', 'refunded');
CREATE DOMAIN email AS text CHECK (value LIKE '%@%');

CREATE TABLE users (
  id         bigserial PRIMARY KEY,
  email      email NOT NULL UNIQUE,
  name       text NOT NULL,
  tags       text[] NOT NULL DEFAULT '{}',
  created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO users (email, name, tags, created_at)
SELECT 'user' || g || '@example.com', 'User ' || g,
       ARRAY['tag' || (g % 7), 'cohort' || (g % 3)],
       timestamptz '2024-01-01 00:00:00+00' + g * interval '17 minutes'
FROM generate_series(1, 20000) g;

CREATE TABLE orders (
  id         bigserial PRIMARY KEY,
  user_id    bigint NOT NULL REFERENCES users(id),
  status     order_status NOT NULL,
  total      numeric(12,2) NOT NULL,
  details    jsonb NOT NULL,
  placed_at  timestamptz NOT NULL
);
INSERT INTO orders (user_id, status, total, details, placed_at)
SELECT 1 + (g % 20000), (ARRAY['new','paid','shipped','refunded'])[1 + g % 4]::order_status,
       round((g % 9973) * 1.37, 2),
       jsonb_build_object('items', g % 5 + 1, 'coupon', CASE WHEN g % 11 = 0 THEN 'SAVE10' END, 'note', 'order ' || g),
       timestamptz '2024-02-01 00:00:00+00' + g * interval '3 minutes'
FROM generate_series(1, 60000) g;
CREATE INDEX orders_user_id ON orders (user_id);

CREATE TABLE attachments (
  id       serial PRIMARY KEY,
  order_id bigint NOT NULL REFERENCES orders(id),
  body     bytea NOT NULL
);
INSERT INTO attachments (order_id, body)
SELECT g, decode(md5(g::text) || md5((g * 7)::text), 'hex') FROM generate_series(1, 5000) g;

CREATE TABLE events (
  at      timestamptz NOT NULL,
  kind    text NOT NULL,
  payload jsonb
) PARTITION BY RANGE (at);
CREATE TABLE events_2024 PARTITION OF events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE events_default PARTITION OF events DEFAULT;
INSERT INTO events (at, kind, payload)
SELECT timestamptz '2024-06-01 00:00:00+00' + g * interval '9 minutes', 'kind' || (g % 5),
       CASE WHEN g % 4 = 0 THEN NULL ELSE jsonb_build_object('n', g) END
FROM generate_series(1, 60000) g;

-- An audit log without a primary key, with duplicate rows.
CREATE TABLE audit_log (actor text, action text, at timestamptz);
INSERT INTO audit_log SELECT 'user' || (g % 50), 'login', timestamptz '2025-01-01 00:00:00+00' + (g % 100) * interval '1 hour'
FROM generate_series(1, 5000) g;
