package heroku_test

import (
	"context"
	"testing"

	"github.com/restore-drill/restore-drill/drill"
	"github.com/restore-drill/restore-drill/drill/drilltest"
	"github.com/restore-drill/restore-drill/drill/heroku/herokutest"
)

// TestPark_NoStaleStateInTheParkingProcess: process B parks a full drill
// in maintenance (workers scaled to 0) and process C finishes it, scaling
// the workers back. B's next full drill of the app must scale the workers
// to 0 again, not trust what it remembered from the first.
func TestPark_NoStaleStateInTheParkingProcess(t *testing.T) {
	t.Parallel()
	s := herokutest.NewServer(t)
	app := newApp(t, s, func(o *herokutest.AppOptions) { o.Formation = map[string]int{"web": 2, "worker": 3} })
	store := drilltest.NewStateStore(t)
	ctx := context.Background()
	b, c := newProvider(t, s), newProvider(t, s)
	park := &drilltest.Parking{}
	yes := func() drill.Answer { return drill.Answer{Confirmation: drill.Confirmation{User: "U-OK", Typed: app}} }
	inB := &drill.Runner{Provider: b, Confirmer: park, Journal: store}
	inC := &drill.Runner{Provider: c, Confirmer: park, Journal: store}

	rep, err := inB.Run(ctx, drill.Options{App: app, Mode: drill.ModeFull})
	if !drill.IsParked(err) {
		t.Fatalf("first drill: %v", err)
	}
	if _, err := inB.Continue(ctx, rep.DrillID, park.Last(), yes()); !drill.IsParked(err) {
		t.Fatalf("first drill, maintenance confirmed: %v", err)
	}
	if w := s.Formation(app)["worker"]; w != 0 || !s.Maintenance(app) {
		t.Fatalf("parked on the promote with worker=%d, maintenance %v; want 0 and on", w, s.Maintenance(app))
	}
	if rep, err := inC.Continue(ctx, rep.DrillID, park.Last(), yes()); err != nil || rep.Result != drill.Passed {
		t.Fatalf("first drill finished in C: %v", err)
	}
	if f := s.Formation(app); f["worker"] != 3 || f["web"] != 2 || s.Maintenance(app) {
		t.Fatalf("after the first drill: formation %v, maintenance %v", f, s.Maintenance(app))
	}

	// The second drill runs in B without parking (a terminal confirmer),
	// so only what B forgot when the first drill parked protects it.
	var during map[string]int
	asked := drill.ConfirmerFunc(func(ctx context.Context, req drill.ConfirmRequest) (drill.Confirmation, error) {
		if req.Step == drill.StepPromote {
			during = s.Formation(app)
		}
		return drill.Confirmation{User: "U-OK", Typed: req.Expect}, nil
	})
	rep, err = (&drill.Runner{Provider: b, Confirmer: asked, Journal: store}).Run(ctx, drill.Options{App: app, Mode: drill.ModeFull})
	if err != nil || rep.Result != drill.Passed {
		t.Fatalf("second drill: %v", err)
	}
	if during["worker"] != 0 {
		t.Errorf("the second drill's maintenance left worker=%d: workers write while the scratch database serves", during["worker"])
	}
	if f := s.Formation(app); f["worker"] != 3 || f["web"] != 2 || s.Maintenance(app) {
		t.Errorf("after the second drill: formation %v, maintenance %v", f, s.Maintenance(app))
	}
}
