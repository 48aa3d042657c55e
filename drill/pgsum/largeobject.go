package pgsum

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/restore-drill/restore-drill/drill"
)

// Large objects are reported as a pseudo table with this schema and name.
const (
	largeObjectSchema = "pg_catalog"
	largeObjectTable  = "pg_largeobject"
)

// largeObjectChunk is how many bytes of a large object one lo_get reads.
const largeObjectChunk = 1 << 20

// largeObjects returns a pseudo table sum for the large objects, which live
// outside every user table, or ok false when there are none. Rows counts the
// large objects; Hash sums a hash of (oid, offset, md5 of the bytes) over
// every 1 MiB chunk of each.
//
// It hashes content read through lo_get rather than pg_largeobject's pages:
// pages are storage, not content. A sparse object (written past its end
// after a seek) has missing pages that read as zeros, and its restore,
// written by pg_dump in one go, has them all, so page rows would differ for
// the same bytes. lo_get also works for the objects' owner, where reading
// pg_largeobject needs a superuser. Chunks keep any single value below the
// 1 GB limit.
func largeObjects(ctx context.Context, tx pgx.Tx) (drill.TableSum, bool, error) {
	sum := drill.TableSum{Schema: largeObjectSchema, Name: largeObjectTable}
	err := tx.QueryRow(ctx, fmt.Sprintf(`WITH RECURSIVE chunk(loid, off, data) AS (
	SELECT m.oid, 0::bigint, lo_get(m.oid, 0, %[1]d) FROM pg_catalog.pg_largeobject_metadata m
	UNION ALL
	SELECT c.loid, c.off + %[1]d, lo_get(c.loid, c.off + %[1]d, %[1]d) FROM chunk c WHERE length(c.data) = %[1]d
)
SELECT (SELECT count(*) FROM pg_catalog.pg_largeobject_metadata),
	coalesce(sum(hashtextextended(c.loid::text || ':' || c.off::text || ':' || md5(c.data), 0)), 0)::text
FROM chunk c`, largeObjectChunk)).Scan(&sum.Rows, &sum.Hash)
	if err != nil {
		return drill.TableSum{}, false, fmt.Errorf("hashing large objects: %w", err)
	}
	return sum, sum.Rows > 0, nil
}
