// Package slacktest is an in-process fake Slack for tests: the Web API
// methods the bot calls, a Socket Mode websocket that sends hello, pings and
// the envelopes a test injects, and the response_url endpoint. Every call and
// every ack is recorded with wait-for helpers; faults (not_in_channel,
// channel_not_found, expired_trigger_id, 429 with Retry-After, slow methods,
// a dropped socket) can be injected.
//
// It is as strict as Slack (see the reference's section 8), at call time:
// the bot token has the manifest's scopes and nothing more (missing_scope);
// blocks over Block Kit's limits are invalid_blocks, text across all blocks
// over 12,000 characters msg_blocks_too_long; the bot is a member of no
// channel until it joins or a test says it was invited, and
// chat.postEphemeral or sharing a file outside its channels is
// not_in_channel; a trigger_id
// opens one view within 3 s; a response_url takes 5 messages within 30
// minutes; chat.update needs a ts the bot posted; an ack later than 3 s is
// recorded with its payload dropped; and command text arrives HTML-escaped,
// with #channel and @user as links when the manifest says should_escape.
package slacktest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/restore-drill/restore-drill/bot"
)

// Call is one recorded Web API or response_url call.
type Call struct {
	// Method is the Web API method ("chat.postMessage"), or "response_url".
	Method string
	At     time.Time
	// Token is the credential the call carried (form field or bearer).
	Token     string
	Channel   string
	TS        string
	ThreadTS  string
	Text      string
	User      string
	Broadcast bool
	// Blocks is the message's blocks as sent (JSON), if any.
	Blocks json.RawMessage
	// View is views.open's view (JSON).
	View      json.RawMessage
	TriggerID string
	// ViewID is the view views.open opened, or views.update updated.
	ViewID string
	// ReplaceOriginal is response_url's replace_original.
	ReplaceOriginal bool
	ResponseType    string
	// Body is the whole request body with the token removed, for scans.
	Body string
	// Reply is the ts the fake answered with; Error the error it answered.
	Reply string
	Error string
	// Injected: the error is a fault the test injected (Fail, RateLimit),
	// not one the bot's call earned.
	Injected bool
	// FileID, Filename and File are a file upload's: files.getUploadURLExternal
	// names it, the upload carries the bytes, files.completeUploadExternal
	// shares it (with Channel and ThreadTS) and carries the bytes uploaded.
	FileID, Filename string
	File             []byte
}

// Ack is one envelope acknowledgement received on the socket.
type Ack struct {
	EnvelopeID string
	Payload    json.RawMessage
	// Latency is from the envelope's send to the ack's arrival.
	Latency time.Duration
	At      time.Time
	// Late: the ack came after 3 s, so Slack dropped it and its payload
	// (Payload is then nil, Dropped what it was).
	Late    bool
	Dropped json.RawMessage
}

// Server is the fake Slack.
type Server struct {
	// AppToken and BotToken are the tokens the fake accepts.
	AppToken, BotToken string
	// PingInterval is how often the socket pings; 5 s when zero.
	PingInterval time.Duration
	// AckDeadline is when an ack comes too late; Slack's 3 s when zero.
	AckDeadline time.Duration
	// RejectedOK stops the test from failing on calls Slack rejected as
	// the caller's mistake (Call.Rejected): for tests of the fake itself.
	RejectedOK bool

	srv *httptest.Server

	mu       sync.Mutex
	changed  chan struct{}
	calls    []Call
	acks     map[string]Ack
	ackOrder []string
	sent     map[string]time.Time
	frames   map[string][]byte
	opens    int
	nextTS   int64
	nextEnv  int
	faults   map[string][]fault
	slow     map[string]time.Duration
	groups   map[string][]string
	outside  map[string]bool   // public channels the bot is not in
	private  map[string]bool   // channels the bot cannot see
	files    map[string][]byte // uploaded file bytes by file id
	names    map[string]string // file names by file id
	refuse   bool              // apps.connections.open fails
	// Strictness (strict.go).
	scopes       map[string]bool
	shouldEscape bool
	members      map[string]bool   // channels the bot is in
	messages     map[string]bool   // channel/ts of messages chat.update may edit
	views        map[string]bool   // ids of open views
	triggers     map[string]string // trigger_id → envelope id it came with
	usedTriggers map[string]bool   // trigger_ids already exchanged for a view
	responseUses map[string]int    // response_url uses by envelope id
	channelNames map[string]string // channel name → id
	userNames    map[string]string // user name → id
	conn         *websocket.Conn
	connDone     chan struct{}
	writeMu      sync.Mutex
}

type fault struct {
	err        string
	retryAfter int
	status     int
}

// New starts a fake Slack, closed at cleanup, when the test fails if the
// bot made a call Slack rejected as its mistake (see RejectedOK).
func New(tb testing.TB) *Server {
	tb.Helper()
	s := &Server{
		AppToken: "xapp-1-A111-222-fakeapptoken", BotToken: "xoxb-111-222-fakebottoken",
		changed: make(chan struct{}), acks: map[string]Ack{}, sent: map[string]time.Time{}, frames: map[string][]byte{},
		nextTS: 1700000000000100, faults: map[string][]fault{}, slow: map[string]time.Duration{},
		groups: map[string][]string{}, outside: map[string]bool{}, private: map[string]bool{},
		files: map[string][]byte{}, names: map[string]string{},
		shouldEscape: bot.ManifestShouldEscape(), members: map[string]bool{}, messages: map[string]bool{}, views: map[string]bool{},
		triggers: map[string]string{}, usedTriggers: map[string]bool{}, responseUses: map[string]int{},
		channelNames: map[string]string{}, userNames: map[string]string{},
	}
	s.SetScopes(bot.ManifestScopes()...)
	mux := http.NewServeMux()
	mux.HandleFunc("/api/", s.api)
	mux.HandleFunc("/link/", s.link)
	mux.HandleFunc("/response/", s.response)
	mux.HandleFunc("/upload/", s.upload)
	s.srv = httptest.NewServer(mux)
	tb.Cleanup(func() {
		s.Close()
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.RejectedOK {
			return
		}
		for _, c := range s.calls {
			if c.Rejected() {
				tb.Errorf("Slack rejected a %s call: %s (text %.80q)", c.Method, c.Error, c.Text)
			}
		}
	})
	return s
}

// APIURL is the Web API base to configure the bot with (trailing slash).
func (s *Server) APIURL() string { return s.srv.URL + "/api/" }

// Close drops the socket and stops the server.
func (s *Server) Close() {
	s.DropSocket()
	s.srv.CloseClientConnections()
	s.srv.Close()
}

func (s *Server) notify() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// SetGroup makes usergroups.users.list answer users for group.
func (s *Server) SetGroup(group string, users ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.groups[group] = users
}

// NotInChannel makes chat.postMessage to channel fail with not_in_channel
// until the bot calls conversations.join on it.
func (s *Server) NotInChannel(channel string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.outside[channel] = true
}

// PrivateChannel makes every post to channel fail with channel_not_found.
func (s *Server) PrivateChannel(channel string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.private[channel] = true
}

// Fail makes the next n calls of method answer {"ok":false,"error":err}.
func (s *Server) Fail(method, err string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.faults[method] = append(s.faults[method], fault{err: err, status: http.StatusOK})
	}
}

// FailStatus makes the next n calls of method answer HTTP status (a 5xx:
// Slack itself failing).
func (s *Server) FailStatus(method string, status, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.faults[method] = append(s.faults[method], fault{err: http.StatusText(status), status: status})
	}
}

// RateLimit makes the next n calls of method answer HTTP 429 with
// Retry-After: retryAfter seconds.
func (s *Server) RateLimit(method string, retryAfter, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.faults[method] = append(s.faults[method], fault{err: "ratelimited", retryAfter: retryAfter, status: http.StatusTooManyRequests})
	}
}

// Slow makes every call of method wait d before answering.
func (s *Server) Slow(method string, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.slow[method] = d
}

// Opens is how many times apps.connections.open was called.
func (s *Server) Opens() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.opens
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func (s *Server) api(w http.ResponseWriter, r *http.Request) {
	method := strings.TrimPrefix(r.URL.Path, "/api/")
	if method == "apps.connections.open" {
		s.connectionsOpen(w, r)
		return
	}
	c := Call{Method: method, At: time.Now()}
	var form map[string]string
	ct := r.Header.Get("Content-Type")
	if strings.HasPrefix(ct, "application/json") {
		var body map[string]json.RawMessage
		_ = json.NewDecoder(r.Body).Decode(&body)
		c.Token = strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		c.View = body["view"]
		_ = json.Unmarshal(body["trigger_id"], &c.TriggerID)
		_ = json.Unmarshal(body["view_id"], &c.ViewID)
		raw, _ := json.Marshal(body)
		c.Body = string(raw)
	} else {
		_ = r.ParseForm()
		form = map[string]string{}
		for k := range r.PostForm {
			form[k] = r.PostForm.Get(k)
		}
		c.Token = form["token"]
		if c.Token == "" {
			c.Token = strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		}
		delete(form, "token")
		c.Channel, c.TS, c.ThreadTS, c.Text, c.User = form["channel"], form["ts"], form["thread_ts"], form["text"], form["user"]
		c.Broadcast = form["reply_broadcast"] == "true"
		if b := form["blocks"]; b != "" {
			c.Blocks = json.RawMessage(b)
		}
		raw, _ := json.Marshal(form)
		c.Body = string(raw)
	}

	s.mu.Lock()
	delay := s.slow[method]
	s.mu.Unlock()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	defer s.notify()
	record := func() { s.calls = append(s.calls, c) }
	if c.Token != s.BotToken {
		c.Error = "invalid_auth"
		record()
		writeJSON(w, map[string]any{"ok": false, "error": "invalid_auth"})
		return
	}
	if q := s.faults[method]; len(q) > 0 {
		f := q[0]
		s.faults[method] = q[1:]
		c.Error, c.Injected = f.err, true
		record()
		if f.status == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", strconv.Itoa(f.retryAfter))
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		if f.status != http.StatusOK {
			w.WriteHeader(f.status)
			return
		}
		writeJSON(w, map[string]any{"ok": false, "error": f.err})
		return
	}
	fail := func(e string) {
		c.Error = e
		record()
		writeJSON(w, map[string]any{"ok": false, "error": e})
	}
	scope, known := RequiredScope(method)
	if known && scope != "" && !s.scopes[scope] {
		c.Error = "missing_scope"
		record()
		writeJSON(w, map[string]any{"ok": false, "error": "missing_scope", "needed": scope})
		return
	}
	switch method {
	case "chat.postMessage", "chat.update", "chat.postEphemeral":
		if s.private[c.Channel] {
			fail("channel_not_found")
			return
		}
		member := s.members[c.Channel]
		switch {
		case method == "chat.postMessage" && s.outside[c.Channel] && !member:
			fail("not_in_channel")
			return
		case method == "chat.postMessage" && !member && !s.scopes["chat:write.public"]:
			fail("not_in_channel")
			return
		case method == "chat.postEphemeral" && !member:
			// chat:write.public covers chat.postMessage only.
			fail("not_in_channel")
			return
		}
		if c.Text == "" && len(c.Blocks) == 0 {
			fail("no_text")
			return
		}
		if e := checkMessage(c.Blocks); e != "" {
			fail(e)
			return
		}
		ts := c.TS
		if method == "chat.update" {
			if !s.messages[c.Channel+"/"+ts] {
				fail("message_not_found")
				return
			}
		} else {
			s.nextTS += 100
			ts = fmt.Sprintf("%d.%06d", s.nextTS/1000000, s.nextTS%1000000)
		}
		c.Reply = ts
		record()
		if method == "chat.postEphemeral" {
			writeJSON(w, map[string]any{"ok": true, "message_ts": ts})
			return
		}
		s.messages[c.Channel+"/"+ts] = true
		writeJSON(w, map[string]any{"ok": true, "channel": c.Channel, "ts": ts, "text": c.Text})
	case "views.open":
		if e := s.triggerProblem(c.TriggerID, c.At); e != "" {
			fail(e)
			return
		}
		if e := checkView(c.View); e != "" {
			fail(e)
			return
		}
		c.ViewID = "V" + strconv.Itoa(len(s.calls)+1)
		s.views[c.ViewID] = true
		record()
		writeJSON(w, map[string]any{"ok": true, "view": map[string]any{"id": c.ViewID}})
	case "views.update":
		if !s.views[c.ViewID] {
			fail("not_found")
			return
		}
		if e := checkView(c.View); e != "" {
			fail(e)
			return
		}
		record()
		writeJSON(w, map[string]any{"ok": true, "view": map[string]any{"id": c.ViewID}})
	case "usergroups.users.list":
		users, ok := s.groups[form["usergroup"]]
		if !ok {
			fail("no_such_subteam")
			return
		}
		record()
		writeJSON(w, map[string]any{"ok": true, "users": users})
	case "auth.test":
		record()
		writeJSON(w, map[string]any{"ok": true, "url": "https://fake-workspace.slack.com/", "team": "Fake", "team_id": "T111", "user_id": "UBOT0001", "bot_id": "B111"})
	case "users.info":
		record()
		writeJSON(w, map[string]any{"ok": true, "user": map[string]any{"id": c.User, "name": strings.ToLower(c.User), "is_admin": false}})
	case "files.getUploadURLExternal":
		n, err := strconv.Atoi(form["length"])
		if form["filename"] == "" || err != nil || n <= 0 {
			fail("invalid_arguments")
			return
		}
		id := fmt.Sprintf("F%06d", len(s.calls)+1)
		c.FileID, c.Filename = id, form["filename"]
		s.names[id] = form["filename"]
		record()
		writeJSON(w, map[string]any{"ok": true, "upload_url": s.srv.URL + "/upload/" + id, "file_id": id})
	case "files.completeUploadExternal":
		var files []struct {
			ID    string `json:"id"`
			Title string `json:"title"`
		}
		if json.Unmarshal([]byte(form["files"]), &files) != nil || len(files) != 1 {
			fail("invalid_arguments")
			return
		}
		data, ok := s.files[files[0].ID]
		if !ok {
			fail("file_not_found")
			return
		}
		c.Channel, c.FileID, c.Filename, c.File, c.Text = form["channel_id"], files[0].ID, s.names[files[0].ID], data, files[0].Title
		if s.private[c.Channel] {
			fail("channel_not_found")
			return
		}
		if c.Channel != "" && !s.members[c.Channel] {
			// Sharing a file needs membership; chat:write.public does not
			// cover it (getnao/nao#1372).
			fail("not_in_channel")
			return
		}
		record()
		writeJSON(w, map[string]any{"ok": true, "files": []map[string]any{{"id": files[0].ID, "title": files[0].Title}}})
	case "conversations.join":
		if s.private[c.Channel] {
			fail("channel_not_found")
			return
		}
		delete(s.outside, c.Channel)
		s.members[c.Channel] = true
		record()
		writeJSON(w, map[string]any{"ok": true, "channel": map[string]any{"id": c.Channel}})
	default:
		c.Error = "unknown_method"
		record()
		w.WriteHeader(http.StatusNotFound)
	}
}

// upload receives a file's bytes at the URL files.getUploadURLExternal gave
// (multipart, field "file", bearer bot token), as Slack's upload host does.
func (s *Server) upload(w http.ResponseWriter, r *http.Request) {
	id := strings.TrimPrefix(r.URL.Path, "/upload/")
	c := Call{Method: "upload", At: time.Now(), FileID: id, Token: strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")}
	f, hdr, err := r.FormFile("file")
	if err == nil {
		defer f.Close()
		buf := new(strings.Builder)
		_, err = io.Copy(buf, f)
		c.File, c.Filename = []byte(buf.String()), hdr.Filename
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	defer s.notify()
	if _, known := s.names[id]; !known || err != nil {
		c.Error = "bad_upload"
		s.calls = append(s.calls, c)
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	if q := s.faults["upload"]; len(q) > 0 {
		s.faults["upload"] = q[1:]
		c.Error = q[0].err
		s.calls = append(s.calls, c)
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	s.files[id] = c.File
	s.calls = append(s.calls, c)
	w.Header().Set("Content-Type", "text/plain")
	_, _ = w.Write([]byte("OK - " + strconv.Itoa(len(c.File))))
}

// RefuseConnections makes apps.connections.open fail (or work again), so
// that a dropped socket stays down.
func (s *Server) RefuseConnections(refuse bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refuse = refuse
}

func (s *Server) response(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Text            string          `json:"text"`
		Blocks          json.RawMessage `json:"blocks"`
		ResponseType    string          `json:"response_type"`
		ReplaceOriginal bool            `json:"replace_original"`
		ThreadTS        string          `json:"thread_ts"`
	}
	raw := new(strings.Builder)
	dec := json.NewDecoder(r.Body)
	var m json.RawMessage
	_ = dec.Decode(&m)
	raw.Write(m)
	_ = json.Unmarshal(m, &body)
	c := Call{Method: "response_url", At: time.Now(), Text: body.Text, Blocks: body.Blocks, ResponseType: body.ResponseType,
		ReplaceOriginal: body.ReplaceOriginal, ThreadTS: body.ThreadTS, Body: raw.String(), TS: strings.TrimPrefix(r.URL.Path, "/response/")}
	s.mu.Lock()
	defer s.mu.Unlock()
	defer s.notify()
	c.Error = s.responseProblem(c.TS, c.At)
	if c.Error == "" {
		c.Error = checkMessage(body.Blocks)
	}
	if c.Error == "" && body.Text == "" && len(body.Blocks) == 0 {
		c.Error = "no_text"
	}
	s.calls = append(s.calls, c)
	if c.Error != "" {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		_ = json.NewEncoder(w).Encode(map[string]any{"ok": false, "error": c.Error})
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	_, _ = w.Write([]byte("ok"))
}

// Calls returns every call recorded so far.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Call(nil), s.calls...)
}

// Acks returns every ack received so far, in arrival order.
func (s *Server) Acks() []Ack {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Ack, 0, len(s.ackOrder))
	for _, id := range s.ackOrder {
		out = append(out, s.acks[id])
	}
	return out
}

// DefaultWait bounds the wait-for helpers.
const DefaultWait = 20 * time.Second

// WaitCalls waits until n recorded calls satisfy match and returns them.
func (s *Server) WaitCalls(tb testing.TB, what string, n int, match func(Call) bool) []Call {
	tb.Helper()
	deadline := time.NewTimer(DefaultWait)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		var got []Call
		for _, c := range s.calls {
			if match(c) {
				got = append(got, c)
			}
		}
		ch := s.changed
		s.mu.Unlock()
		if len(got) >= n {
			return got[:n]
		}
		select {
		case <-ch:
		case <-deadline.C:
			tb.Fatalf("waited %s for %d call(s) %s; saw %d. Calls:\n%s", DefaultWait, n, what, len(got), s.dump())
		}
	}
}

// WaitCall waits for the first call that satisfies match.
func (s *Server) WaitCall(tb testing.TB, what string, match func(Call) bool) Call {
	tb.Helper()
	return s.WaitCalls(tb, what, 1, match)[0]
}

func (s *Server) dump() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b strings.Builder
	for _, c := range s.calls {
		text := c.Text
		if len(text) > 160 {
			text = text[:160] + "…"
		}
		fmt.Fprintf(&b, "  %s ch=%s ts=%s thread=%s err=%s %q\n", c.Method, c.Channel, c.TS, c.ThreadTS, c.Error, text)
	}
	return b.String()
}

// WaitAck waits for the ack of envelope id.
func (s *Server) WaitAck(tb testing.TB, id string) Ack {
	tb.Helper()
	deadline := time.NewTimer(DefaultWait)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		a, ok := s.acks[id]
		ch := s.changed
		s.mu.Unlock()
		if ok {
			return a
		}
		select {
		case <-ch:
		case <-deadline.C:
			tb.Fatalf("waited %s for the ack of envelope %s", DefaultWait, id)
		}
	}
}

// --- Socket Mode ---

func (s *Server) connectionsOpen(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ") != s.AppToken {
		writeJSON(w, map[string]any{"ok": false, "error": "invalid_auth"})
		return
	}
	if s.refuse {
		writeJSON(w, map[string]any{"ok": false, "error": "internal_error"})
		return
	}
	s.opens++
	s.notify()
	writeJSON(w, map[string]any{"ok": true, "url": fmt.Sprintf("ws://%s/link/?ticket=%d", s.srv.Listener.Addr(), s.opens)})
}

func (s *Server) link(w http.ResponseWriter, r *http.Request) {
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	conn, err := up.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	done := make(chan struct{})
	s.mu.Lock()
	old := s.conn
	s.conn, s.connDone = conn, done
	s.notify()
	s.mu.Unlock()
	if old != nil {
		_ = old.Close()
	}
	s.writeMu.Lock()
	_ = conn.WriteJSON(map[string]any{"type": "hello", "num_connections": 1,
		"debug_info": map[string]any{"host": "fake", "approximate_connection_time": 18060}, "connection_info": map[string]any{"app_id": "A111"}})
	s.writeMu.Unlock()
	interval := s.PingInterval
	if interval <= 0 {
		interval = 5 * time.Second
	}
	go func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if conn.WriteControl(websocket.PingMessage, []byte("ping"), time.Now().Add(time.Second)) != nil {
					return
				}
			}
		}
	}()
	defer func() {
		close(done)
		s.mu.Lock()
		if s.conn == conn {
			s.conn = nil
		}
		s.notify()
		s.mu.Unlock()
		_ = conn.Close()
	}()
	for {
		_, data, err := conn.ReadMessage()
		if err != nil {
			return
		}
		now := time.Now()
		var a struct {
			EnvelopeID string          `json:"envelope_id"`
			Payload    json.RawMessage `json:"payload"`
		}
		if json.Unmarshal(data, &a) != nil || a.EnvelopeID == "" {
			continue
		}
		s.mu.Lock()
		if _, dup := s.acks[a.EnvelopeID]; !dup {
			s.ackOrder = append(s.ackOrder, a.EnvelopeID)
			ack := Ack{EnvelopeID: a.EnvelopeID, Payload: a.Payload, Latency: now.Sub(s.sent[a.EnvelopeID]), At: now}
			deadline := s.AckDeadline
			if deadline <= 0 {
				deadline = AckDeadline
			}
			if ack.Latency > deadline {
				// Too late: Slack has shown operation_timeout and ignores
				// the answer.
				ack.Late, ack.Payload, ack.Dropped = true, nil, a.Payload
			}
			s.acks[a.EnvelopeID] = ack
		}
		s.notify()
		s.mu.Unlock()
	}
}

// WaitConnected waits until the bot's socket is connected.
func (s *Server) WaitConnected(tb testing.TB) {
	tb.Helper()
	// A reconnect waits on slack-go's backoff, which under a loaded CI
	// machine can exceed the usual wait.
	s.waitSocket(tb, true, "the bot did not connect to the fake socket")
}

// WaitDisconnected waits until the bot's socket is gone (its process
// died, or it closed it).
func (s *Server) WaitDisconnected(tb testing.TB) {
	tb.Helper()
	s.waitSocket(tb, false, "the bot's socket stayed open")
}

func (s *Server) waitSocket(tb testing.TB, open bool, failure string) {
	tb.Helper()
	deadline := time.NewTimer(3 * DefaultWait)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		ok, ch := (s.conn != nil) == open, s.changed
		s.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			// The bot usually runs in the test's process: where it is stuck
			// is the first thing to know.
			buf := make([]byte, 1<<20)
			tb.Logf("goroutines:\n%s", buf[:runtime.Stack(buf, true)])
			tb.Fatalf("%s within %s", failure, 3*DefaultWait)
		}
	}
}

// DropSocket closes the websocket abruptly, as a network failure would.
func (s *Server) DropSocket() {
	s.mu.Lock()
	conn := s.conn
	s.conn = nil
	s.mu.Unlock()
	if conn != nil {
		_ = conn.Close()
	}
}

// Disconnect sends Slack's disconnect envelope (refresh_requested).
func (s *Server) Disconnect(tb testing.TB) {
	tb.Helper()
	s.WaitConnected(tb)
	// Like Slack, send nothing more on a connection told to go away; the
	// client closes it and opens a new one. It is forgotten before the
	// frame goes out: the client may reconnect before this returns, and
	// its new connection must not be forgotten instead.
	s.mu.Lock()
	conn := s.conn
	s.conn = nil
	s.notify()
	s.mu.Unlock()
	s.writeMu.Lock()
	err := conn.WriteJSON(map[string]any{"type": "disconnect", "reason": "refresh_requested", "debug_info": map[string]any{"host": "fake"}})
	s.writeMu.Unlock()
	if err != nil {
		tb.Fatalf("send disconnect: %v", err)
	}
}

func (s *Server) send(tb testing.TB, id string, frame map[string]any) {
	tb.Helper()
	data, err := json.Marshal(frame)
	if err != nil {
		tb.Fatal(err)
	}
	s.sendRaw(tb, id, data)
}

func (s *Server) sendRaw(tb testing.TB, id string, data []byte) {
	tb.Helper()
	s.WaitConnected(tb)
	s.writeMu.Lock()
	s.mu.Lock()
	conn := s.conn
	if id != "" {
		s.frames[id] = data
		if _, ok := s.sent[id]; !ok {
			s.sent[id] = time.Now() // at the write, so the fake's own queueing is not counted
		}
	}
	s.mu.Unlock()
	if conn == nil {
		s.writeMu.Unlock()
		tb.Fatalf("send envelope %s: the socket dropped", id)
	}
	err := conn.WriteMessage(websocket.TextMessage, data)
	s.writeMu.Unlock()
	if err != nil {
		tb.Fatalf("send envelope %s: %v", id, err)
	}
}

// Resend sends envelope id again, as Slack does when it retries.
func (s *Server) Resend(tb testing.TB, id string) {
	tb.Helper()
	s.mu.Lock()
	data := s.frames[id]
	s.mu.Unlock()
	s.sendRaw(tb, id, data)
}

func (s *Server) envelopeID() (id string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextEnv++
	return fmt.Sprintf("env-%06d", s.nextEnv), s.nextEnv
}

// Slash is one slash command invocation. Text is what the person typed:
// the fake sends it as Slack does (see commandText).
type Slash struct {
	User, Channel, Text string
}

// SlashCommand sends a /restore-drill command and returns the envelope id.
// Its response_url is this fake's /response/<envelope id>.
func (s *Server) SlashCommand(tb testing.TB, c Slash) string {
	tb.Helper()
	id, n := s.envelopeID()
	trigger := s.trigger(id, n)
	s.mu.Lock()
	name := "ops"
	for nm, ch := range s.channelNames {
		if ch == c.Channel {
			name = nm
		}
	}
	s.mu.Unlock()
	s.send(tb, id, map[string]any{
		"type": "slash_commands", "envelope_id": id, "accepts_response_payload": true,
		"payload": map[string]any{
			"token": "deprecated-verification-token", "team_id": "T111", "team_domain": "acme", "channel_id": c.Channel, "channel_name": name,
			"user_id": c.User, "user_name": strings.ToLower(c.User), "command": "/restore-drill", "text": s.commandText(c.Text),
			"api_app_id": "A111", "response_url": s.ResponseURL(id), "trigger_id": trigger,
		},
	})
	return id
}

// trigger is the trigger_id handed out with envelope id (the n-th).
func (s *Server) trigger(id string, n int) string {
	t := fmt.Sprintf("trig-%d", n)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.triggers[t] = id
	return t
}

// ResponseURL is the response_url handed out with envelope id.
func (s *Server) ResponseURL(id string) string { return s.srv.URL + "/response/" + id }

// Click is a button click on a message.
type Click struct {
	User, Channel, MessageTS, ActionID, BlockID, Value string
}

// Click sends a block_actions envelope and returns its id.
func (s *Server) Click(tb testing.TB, c Click) string {
	tb.Helper()
	id, n := s.envelopeID()
	trigger := s.trigger(id, n)
	s.send(tb, id, map[string]any{
		"type": "interactive", "envelope_id": id, "accepts_response_payload": false,
		"payload": map[string]any{
			"type": "block_actions", "user": map[string]any{"id": c.User, "username": strings.ToLower(c.User), "team_id": "T111"},
			"api_app_id": "A111", "trigger_id": trigger, "response_url": s.ResponseURL(id),
			"container": map[string]any{"type": "message", "message_ts": c.MessageTS, "channel_id": c.Channel, "is_ephemeral": false},
			"channel":   map[string]any{"id": c.Channel, "name": "ops"},
			"message":   map[string]any{"ts": c.MessageTS, "type": "message"},
			"actions": []map[string]any{{"action_id": c.ActionID, "block_id": c.BlockID, "value": c.Value, "type": "button",
				"action_ts": fmt.Sprintf("%d.000200", time.Now().Unix())}},
		},
	})
	return id
}

// Submission is a modal's submission with one plain text input.
type Submission struct {
	User, CallbackID, PrivateMetadata, BlockID, ActionID, Value string
}

// Submit sends a view_submission envelope and returns its id.
func (s *Server) Submit(tb testing.TB, v Submission) string {
	tb.Helper()
	id, _ := s.envelopeID()
	s.send(tb, id, map[string]any{
		"type": "interactive", "envelope_id": id, "accepts_response_payload": true,
		"payload": map[string]any{
			"type": "view_submission", "user": map[string]any{"id": v.User, "username": strings.ToLower(v.User), "team_id": "T111"},
			"api_app_id": "A111",
			"view": map[string]any{"id": "V1", "type": "modal", "callback_id": v.CallbackID, "private_metadata": v.PrivateMetadata, "hash": "h1",
				"state": map[string]any{"values": map[string]any{v.BlockID: map[string]any{v.ActionID: map[string]any{"type": "plain_text_input", "value": v.Value}}}}},
		},
	})
	return id
}

// Message sends an events_api message event (for dedupe and bot tests).
func (s *Server) Message(tb testing.TB, eventID, user, botID, channel, text string) string {
	tb.Helper()
	id, _ := s.envelopeID()
	s.send(tb, id, map[string]any{
		"type": "events_api", "envelope_id": id, "accepts_response_payload": false, "retry_attempt": 0,
		"payload": map[string]any{"type": "event_callback", "team_id": "T111", "api_app_id": "A111", "event_id": eventID, "event_time": time.Now().Unix(),
			"event": map[string]any{"type": "message", "user": user, "bot_id": botID, "channel": channel, "text": text, "ts": "1700000001.000100"}},
	})
	return id
}

// BlockText returns every text in the call's blocks (and view), decoded,
// one per line.
func (c Call) BlockText() string {
	var out []string
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if s, ok := x["text"].(string); ok {
				out = append(out, s)
			}
			for k, y := range x {
				if k != "text" {
					walk(y)
				} else if _, ok := y.(string); !ok {
					walk(y)
				}
			}
		case []any:
			for _, y := range x {
				walk(y)
			}
		}
	}
	for _, raw := range []json.RawMessage{c.Blocks, c.View} {
		if len(raw) == 0 {
			continue
		}
		var v any
		if json.Unmarshal(raw, &v) == nil {
			walk(v)
		}
	}
	return strings.Join(out, "\n")
}
