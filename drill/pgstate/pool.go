package pgstate

import "github.com/jackc/pgx/v5/pgxpool"

// Pool returns the pool the store was made with, for what shares the state
// database (the bot's job queue).
func (s *Store) Pool() *pgxpool.Pool { return s.pool }
