package heroku_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/restore-drill/restore-drill/drill/heroku"
)

// sleeps records the waits a Transport asks for without taking them.
type sleeps struct {
	mu  sync.Mutex
	got []time.Duration
}

func (s *sleeps) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.got = append(s.got, d)
	s.mu.Unlock()
	return ctx.Err()
}

func (s *sleeps) all() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.got...)
}

// scripted answers each request with the next status (200 after the last).
func scripted(t *testing.T, headers map[string]string, statuses ...int) (*httptest.Server, *[]string) {
	t.Helper()
	var mu sync.Mutex
	var bodies []string
	n := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, string(b))
		i := n
		n++
		mu.Unlock()
		for k, v := range headers {
			w.Header().Set(k, v)
		}
		if i < len(statuses) {
			w.WriteHeader(statuses[i])
			_, _ = w.Write([]byte(`{"id":"unavailable","message":"try later"}`))
			return
		}
		_, _ = w.Write([]byte(`{"ok":true}`))
	}))
	t.Cleanup(srv.Close)
	return srv, &bodies
}

func TestTransport_ResendsPOSTBodyAfter503(t *testing.T) {
	t.Parallel()
	srv, bodies := scripted(t, nil, http.StatusServiceUnavailable, http.StatusTooManyRequests)
	sl := &sleeps{}
	tr := &heroku.Transport{Sleep: sl.sleep}
	body := `{"plan":"heroku-postgresql:essential-0","name":"restore-drill-dabcdefg"}`
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/apps/x/addons", strings.NewReader(body))
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d, want 200 after retries", resp.StatusCode)
	}
	if len(*bodies) != 3 {
		t.Fatalf("%d attempts, want 3", len(*bodies))
	}
	for i, b := range *bodies {
		if b != body {
			t.Errorf("attempt %d sent %q, want the body intact", i+1, b)
		}
	}
	if tr.Calls() != 3 {
		t.Errorf("counted %d calls, want 3", tr.Calls())
	}
	// Backoff without Retry-After: between half and all of 500ms, growing.
	got := sl.all()
	if len(got) != 2 || got[0] < 250*time.Millisecond || got[0] > 500*time.Millisecond || got[1] < 500*time.Millisecond || got[1] > time.Second {
		t.Errorf("waits %v, want jittered exponential backoff from 500ms", got)
	}
}

func TestTransport_HonoursRetryAfter(t *testing.T) {
	t.Parallel()
	srv, _ := scripted(t, map[string]string{"Retry-After": "7"}, http.StatusTooManyRequests)
	sl := &sleeps{}
	tr := &heroku.Transport{Sleep: sl.sleep, MaxRetryTime: time.Minute}
	resp, err := (&http.Client{Transport: tr}).Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := sl.all(); len(got) != 1 || got[0] != 7*time.Second {
		t.Errorf("waits %v, want exactly the 7s Retry-After asked", got)
	}
}

func TestTransport_CapsTotalRetryTime(t *testing.T) {
	t.Parallel()
	// A Retry-After longer than the cap: the 429 is returned at once.
	srv, bodies := scripted(t, map[string]string{"Retry-After": "120"}, http.StatusTooManyRequests)
	sl := &sleeps{}
	tr := &heroku.Transport{Sleep: sl.sleep, MaxRetryTime: 30 * time.Second}
	resp, err := (&http.Client{Transport: tr}).Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || len(*bodies) != 1 || len(sl.all()) != 0 {
		t.Errorf("status %d after %d attempts and waits %v, want the 429 at once", resp.StatusCode, len(*bodies), sl.all())
	}
	// Endless 503s with real, short waits: it stops within the cap.
	always := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer always.Close()
	tr2 := &heroku.Transport{MinBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond, MaxRetryTime: 50 * time.Millisecond, MaxAttempts: 1 << 20}
	start := time.Now()
	resp, err = (&http.Client{Transport: tr2}).Get(always.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if d := time.Since(start); d > 2*time.Second || tr2.Calls() < 2 {
		t.Errorf("gave up after %s and %d calls, want a few retries within the 50ms cap", d, tr2.Calls())
	}
}

// A POST answered 502 or 504 may have been carried out behind the gateway:
// it is not sent again, so nothing is created twice.
func TestTransport_NoPOSTResentAfterGatewayErrors(t *testing.T) {
	t.Parallel()
	for _, status := range []int{http.StatusBadGateway, http.StatusGatewayTimeout, http.StatusInternalServerError} {
		srv, bodies := scripted(t, nil, status)
		tr := &heroku.Transport{Sleep: (&sleeps{}).sleep}
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/apps/x/addons", strings.NewReader(`{}`))
		resp, err := (&http.Client{Transport: tr}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != status || len(*bodies) != 1 {
			t.Errorf("%d: got %d after %d attempts, want the %d after one", status, resp.StatusCode, len(*bodies), status)
		}
	}
}

func TestTransport_ContextCancelStopsBackoff(t *testing.T) {
	t.Parallel()
	seen := make(chan struct{}, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- struct{}{}
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	tr := &heroku.Transport{MinBackoff: time.Hour, MaxBackoff: time.Hour, MaxRetryTime: 10 * time.Hour}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-seen
		cancel()
	}()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
	done := make(chan error, 1)
	go func() {
		resp, err := tr.RoundTrip(req)
		if resp != nil {
			resp.Body.Close()
		}
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the backoff ignored the cancelled context")
	}
	if tr.Calls() != 1 {
		t.Errorf("%d calls, want 1", tr.Calls())
	}
}

func TestTransport_SlowsDownWhenRateLimitLow(t *testing.T) {
	t.Parallel()
	var remaining atomic.Int64
	remaining.Store(4000)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("RateLimit-Remaining", strconv.FormatInt(remaining.Load(), 10))
	}))
	defer srv.Close()
	sl := &sleeps{}
	tr := &heroku.Transport{Sleep: sl.sleep, LowDelay: 2 * time.Second}
	c := &http.Client{Transport: tr}
	get := func() {
		resp, err := c.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	get()
	get()
	if len(sl.all()) != 0 {
		t.Fatalf("waited %v with 4000 calls left", sl.all())
	}
	remaining.Store(42)
	get() // sees 42
	get() // waits first
	if got := sl.all(); len(got) != 1 || got[0] != 2*time.Second {
		t.Errorf("waits %v, want one 2s wait once the budget ran low", got)
	}
	if n, ok := tr.RateLimitRemaining(); !ok || n != 42 {
		t.Errorf("remaining %d %v", n, ok)
	}
}
