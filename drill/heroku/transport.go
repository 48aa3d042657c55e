package heroku

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Transport is the one http.RoundTripper both Heroku APIs go through, under
// heroku-go's own Transport (which adds the Bearer token and the Accept
// header). It gives every attempt a timeout, retries 429, 5xx and network
// errors with exponential backoff and jitter, honouring Retry-After and the
// request's context, re-sends bodies through GetBody, caps the total time
// spent retrying, slows down when RateLimit-Remaining runs low, and counts
// every request it sends.
type Transport struct {
	// Base sends the requests; http.DefaultTransport when nil.
	Base http.RoundTripper
	// Timeout bounds one attempt, response headers and body included; 60s
	// when zero.
	Timeout time.Duration
	// MinBackoff and MaxBackoff bound the wait between attempts when the
	// server says nothing (Retry-After); 500ms and 30s when zero.
	MinBackoff, MaxBackoff time.Duration
	// MaxRetryTime caps the time spent retrying one request, waits
	// included; 3 minutes when zero.
	MaxRetryTime time.Duration
	// MaxAttempts caps the attempts of one request; 8 when zero.
	MaxAttempts int
	// LowRemaining is the RateLimit-Remaining below which each request
	// first waits LowDelay, so a drill slows down before the account's
	// rate limit runs dry (Heroku refills about 75 tokens a minute); 100
	// and 1s when zero.
	LowRemaining int
	LowDelay     time.Duration
	// Sleep waits d or until ctx ends; a real timer when nil. Tests replace
	// it to observe the waits without taking them.
	Sleep func(ctx context.Context, d time.Duration) error

	calls     atomic.Int64
	mu        sync.Mutex
	remaining int // last RateLimit-Remaining seen; -1 when none
	seen      bool
}

// Calls returns the number of requests sent, retries included: each one
// costs a token of the account's rate limit.
func (t *Transport) Calls() int { return int(t.calls.Load()) }

// RateLimitRemaining returns the last RateLimit-Remaining header seen, and
// false when none was.
func (t *Transport) RateLimitRemaining() (int, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.remaining, t.seen
}

func (t *Transport) base() http.RoundTripper {
	if t.Base != nil {
		return t.Base
	}
	return http.DefaultTransport
}

func dur(v, def time.Duration) time.Duration {
	if v > 0 {
		return v
	}
	return def
}

func (t *Transport) sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	if t.Sleep != nil {
		return t.Sleep(ctx, d)
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	maxAttempts := t.MaxAttempts
	if maxAttempts <= 0 {
		maxAttempts = 8
	}
	lowRemaining := t.LowRemaining
	if lowRemaining <= 0 {
		lowRemaining = 100
	}
	deadline := time.Now().Add(dur(t.MaxRetryTime, 3*time.Minute))
	backoff := dur(t.MinBackoff, 500*time.Millisecond)
	for attempt := 1; ; attempt++ {
		if rem, ok := t.RateLimitRemaining(); ok && rem < lowRemaining {
			if err := t.sleep(ctx, dur(t.LowDelay, time.Second)); err != nil {
				return nil, err
			}
		}
		try := req
		if attempt > 1 && req.Body != nil && req.Body != http.NoBody {
			if req.GetBody == nil {
				return nil, errors.New("cannot retry a request whose body cannot be re-read")
			}
			body, err := req.GetBody()
			if err != nil {
				return nil, err
			}
			try = req.Clone(ctx)
			try.Body = body
		}
		resp, err := t.once(try)
		retryable, wait := t.verdict(req, resp, err)
		// A platform that cannot be reached at all is more likely a wrong
		// URL or a network down than a blip: a few quick tries, not minutes.
		if err != nil && attempt >= min(maxAttempts, 4) {
			retryable = false
		}
		if ctx.Err() != nil && retryable {
			// Cancelled while the answer asked for another try: say so,
			// rather than hand back a failure the caller would act on.
			if resp != nil {
				resp.Body.Close()
			}
			return nil, ctx.Err()
		}
		if !retryable || attempt >= maxAttempts {
			return resp, err
		}
		if wait <= 0 {
			// Full jitter: a random wait up to the current backoff, at
			// least half of it.
			wait = backoff/2 + rand.N(backoff/2+1)
			backoff = min(2*backoff, dur(t.MaxBackoff, 30*time.Second))
		}
		if time.Now().Add(wait).After(deadline) {
			return resp, err // the cap on retry time: give the last answer
		}
		if resp != nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
		}
		if err := t.sleep(ctx, wait); err != nil {
			return nil, err
		}
	}
}

// once sends one attempt under its own timeout; the timeout's cancel runs
// when the response body is closed.
func (t *Transport) once(req *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithTimeout(req.Context(), dur(t.Timeout, 60*time.Second))
	t.calls.Add(1)
	resp, err := t.base().RoundTrip(req.WithContext(ctx))
	if err != nil {
		cancel()
		return nil, err
	}
	if v := resp.Header.Get("RateLimit-Remaining"); v != "" {
		if n, perr := strconv.Atoi(v); perr == nil {
			t.mu.Lock()
			t.remaining, t.seen = n, true
			t.mu.Unlock()
		}
	}
	resp.Body = &cancelBody{ReadCloser: resp.Body, cancel: cancel}
	return resp, nil
}

type cancelBody struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b *cancelBody) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

// verdict says whether an attempt's outcome is worth retrying, and how long
// the server asked to wait (0 when it did not say).
func (t *Transport) verdict(req *http.Request, resp *http.Response, err error) (bool, time.Duration) {
	idempotent := req.Method == http.MethodGet || req.Method == http.MethodHead ||
		req.Method == http.MethodPut || req.Method == http.MethodDelete || req.Method == http.MethodOptions
	if err != nil {
		if req.Context().Err() != nil {
			return false, 0
		}
		// A POST that may have reached the server is not sent twice (it
		// could create a second add-on); one that never left is.
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			return true, 0
		}
		return idempotent, 0
	}
	switch resp.StatusCode {
	case http.StatusTooManyRequests, http.StatusServiceUnavailable:
		// Refused before any work: safe to send again, POSTs included.
		return true, retryAfter(resp.Header.Get("Retry-After"))
	case http.StatusInternalServerError, http.StatusBadGateway, http.StatusGatewayTimeout:
		// The request may have been carried out (a gateway timed out on
		// a slow add-on creation): a POST sent again could create a second
		// add-on, restore or attachment.
		return idempotent, retryAfter(resp.Header.Get("Retry-After"))
	}
	return false, 0
}

// retryAfter reads a Retry-After header: seconds or an HTTP date. A zero
// wait is made 1ms so that it still counts as the server's say.
func retryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return max(time.Duration(s)*time.Second, time.Millisecond)
	}
	if at, err := http.ParseTime(v); err == nil {
		return max(time.Until(at), time.Millisecond)
	}
	return 0
}
