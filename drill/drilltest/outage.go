package drilltest

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/restore-drill/restore-drill/drill"
)

// OutageDuring wraps an emergency provider so that the state database is
// unreachable from the start of its first restore (in place or into a new
// database) for Lasts: the restore goes on meanwhile, and the journal
// writes after it meet the outage too. Ended is closed when the outage is
// over.
type OutageDuring struct {
	drill.EmergencyProvider
	outage *StateOutage
	lasts  time.Duration
	once   sync.Once
	// Ended is closed when the outage is over.
	Ended chan struct{}
	// Relocked, once the restore returned, tells whether DrillID's lock was
	// taken again within seconds of the outage's end; the restore waits
	// for that end when WaitRelock is set.
	Relocked   bool
	WaitRelock bool
	DrillID    string
}

// NewOutageDuring wraps ep: the outage stops the state database outage
// stands for, for lasts.
func NewOutageDuring(ep drill.EmergencyProvider, outage *StateOutage, lasts time.Duration) *OutageDuring {
	return &OutageDuring{EmergencyProvider: ep, outage: outage, lasts: lasts, Ended: make(chan struct{})}
}

// RestoreProduction implements drill.EmergencyProvider.
func (o *OutageDuring) RestoreProduction(ctx context.Context, app string, b drill.Backup, proof drill.Confirmation, progress drill.ProgressFunc) (drill.RestoreResult, error) {
	return o.during(ctx, func() (drill.RestoreResult, error) {
		return o.EmergencyProvider.RestoreProduction(ctx, app, b, proof, progress)
	})
}

// Restore implements drill.Provider.
func (o *OutageDuring) Restore(ctx context.Context, b drill.Backup, target drill.Database, progress drill.ProgressFunc) (drill.RestoreResult, error) {
	return o.during(ctx, func() (drill.RestoreResult, error) { return o.EmergencyProvider.Restore(ctx, b, target, progress) })
}

// during runs restore, the first one inside the outage.
func (o *OutageDuring) during(ctx context.Context, restore func() (drill.RestoreResult, error)) (drill.RestoreResult, error) {
	first := false
	o.once.Do(func() {
		first = true
		o.outage.Begin()
		time.AfterFunc(o.lasts, func() {
			o.outage.End()
			close(o.Ended)
		})
		// Long enough for the owner to find its lock connection dead.
		select {
		case <-ctx.Done():
		case <-time.After(3 * time.Second):
		}
	})
	if err := ctx.Err(); err != nil {
		return drill.RestoreResult{}, err
	}
	res, err := restore()
	if first && err == nil && o.WaitRelock {
		<-o.Ended
		o.Relocked = lockTakenAgain(ctx, o.DrillID)
	}
	return res, err
}

// lockTakenAgain waits up to three lock checks for some session to hold
// drillID's lock.
func lockTakenAgain(ctx context.Context, drillID string) bool {
	conn, err := pgx.Connect(ctx, ServerURL())
	if err != nil {
		return false
	}
	defer conn.Close(ctx)
	for range 60 {
		var held bool
		if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted AND objid = hashtext($1)::oid)`, drillID).Scan(&held); err == nil && held {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(100 * time.Millisecond):
		}
	}
	return false
}

// Said tells whether one of rec's events says text, in any case.
func Said(rec *drill.Recorder, text string) bool {
	for _, e := range rec.Events() {
		if strings.Contains(strings.ToLower(e.Message), strings.ToLower(text)) {
			return true
		}
	}
	return false
}
