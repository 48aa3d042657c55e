package bot

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"html"
	"io"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/slack-go/slack"
)

// ConsoleTransport is the Transport of the terminal: it renders the thread as
// indented text and asks confirmations on the prompt. Everything else
// (parsing, dispatch, rendering, confirmations) is the Slack path's.
type ConsoleTransport struct {
	mu      sync.Mutex
	out     io.Writer
	next    int
	threads map[string]bool
	shown   map[string]string
	// replies holds the lines of each thread reply already printed.
	replies map[string]map[string]bool
	answer  chan string
	// expect is the text the waiting prompt asks for.
	expect   string
	prompted chan struct{}
	closed   bool
	// User is who types at the terminal.
	User string
}

var (
	_ Transport = (*ConsoleTransport)(nil)
	_ Prompter  = (*ConsoleTransport)(nil)
)

// NewConsoleTransport returns a transport that writes to out.
func NewConsoleTransport(out io.Writer, user string) *ConsoleTransport {
	return &ConsoleTransport{out: out, User: user, threads: map[string]bool{}, shown: map[string]string{}, replies: map[string]map[string]bool{},
		prompted: make(chan struct{}, 1)}
}

var emoji = strings.NewReplacer(":white_check_mark:", "✓", ":x:", "✗", ":warning:", "!", ":fast_forward:", "–",
	":leftwards_arrow_with_hook:", "↺", ":rotating_light:", "!!", ":information_source:", "i", ":hourglass:", "⌛",
	":hourglass_flowing_sand:", "…", ":arrows_counterclockwise:", "…", ":no_entry:", "✗", ":no_entry_sign:", "✗", ":double_vertical_bar:", "⏸")

var (
	slackDate = regexp.MustCompile(`<!date\^[^|>]*\|([^>]*)>`)
	urlLink   = regexp.MustCompile(`<(https?://[^|>]+)\|([^>]+)>`)
)

// RenderText renders a message as plain text for a terminal.
func RenderText(m Message) string {
	var parts []string
	for _, b := range m.Blocks {
		switch x := b.(type) {
		case *slack.SectionBlock:
			if x.Text != nil {
				parts = append(parts, x.Text.Text)
			}
		case *slack.ActionBlock:
			if x.Elements == nil {
				continue
			}
			for _, e := range x.Elements.ElementSet {
				if btn, ok := e.(*slack.ButtonBlockElement); ok && btn.Text != nil {
					parts = append(parts, "[ "+btn.Text.Text+" ]")
				}
			}
		}
	}
	if len(parts) == 0 {
		parts = append(parts, m.Text)
	}
	s := strings.Join(parts, "\n")
	s = strings.ReplaceAll(s, "```", "")
	// A terminal shows a Slack date as its fallback, a link as its label
	// and address.
	s = slackDate.ReplaceAllString(s, "$1")
	s = urlLink.ReplaceAllString(s, "$2 ($1)")
	return html.UnescapeString(emoji.Replace(s))
}

func (t *ConsoleTransport) print(prefix string, s string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, line := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		fmt.Fprintln(t.out, prefix+line)
	}
}

// Post prints a parent message, or an indented thread reply.
func (t *ConsoleTransport) Post(_ context.Context, channel string, m Message, o PostOptions) (string, error) {
	t.mu.Lock()
	t.next++
	ts := strconv.Itoa(t.next)
	t.shown[ts] = lastLine(RenderText(m))
	if o.ThreadTS != "" {
		t.replies[ts] = settled(RenderText(m))
	}
	t.mu.Unlock()
	if o.ThreadTS == "" {
		text := RenderText(m)
		first, rest, _ := strings.Cut(text, "\n")
		t.print("● ", first)
		if rest != "" {
			t.print("  ", rest)
		}
	} else {
		t.print("    │ ", RenderText(m))
	}
	return ts, nil
}

func lastLine(s string) string {
	s = strings.TrimRight(s, "\n")
	return s[strings.LastIndex(s, "\n")+1:]
}

// settled is the set of lines of a reply that are not progress ("…").
func settled(text string) map[string]bool {
	out := map[string]bool{}
	for _, l := range strings.Split(text, "\n") {
		if !strings.HasPrefix(l, "… ") {
			out[l] = true
		}
	}
	return out
}

// Update prints what changed: a thread reply's new settled lines (a step
// done, who confirmed), or the parent's new status line.
func (t *ConsoleTransport) Update(_ context.Context, _, ts string, m Message) error {
	text := RenderText(m)
	t.mu.Lock()
	if seen, ok := t.replies[ts]; ok {
		var fresh []string
		for _, l := range strings.Split(text, "\n") {
			if !seen[l] && !strings.HasPrefix(l, "… ") {
				seen[l] = true
				fresh = append(fresh, l)
			}
		}
		t.mu.Unlock()
		if len(fresh) > 0 {
			t.print("    │ ", strings.Join(fresh, "\n"))
		}
		return nil
	}
	line := lastLine(text)
	same := t.shown[ts] == line
	t.shown[ts] = line
	t.mu.Unlock()
	if !same {
		t.print("    ↻ ", line)
	}
	return nil
}

// Ephemeral prints a reply only the user sees.
func (t *ConsoleTransport) Ephemeral(_ context.Context, _, _ string, m Message) error {
	t.print("  » ", RenderText(m))
	return nil
}

// Respond prints a command's late reply.
func (t *ConsoleTransport) Respond(_ context.Context, _ string, m Message) error {
	t.print("  » ", RenderText(m))
	return nil
}

// OpenModal is not used on the console: Prompt asks instead.
func (t *ConsoleTransport) OpenModal(context.Context, string, slack.ModalViewRequest) (string, error) {
	return "", errors.New("the console has no modals")
}

// UpdateModal is not used on the console.
func (t *ConsoleTransport) UpdateModal(context.Context, string, slack.ModalViewRequest) error {
	return errors.New("the console has no modals")
}

// Join does nothing: the console is every channel.
func (t *ConsoleTransport) Join(context.Context, string) error { return nil }

// GroupMembers knows no groups.
func (t *ConsoleTransport) GroupMembers(context.Context, string) ([]string, error) { return nil, nil }

// Prompt asks the terminal for the confirmation text.
func (t *ConsoleTransport) Prompt(ctx context.Context, p Pending) (string, string, error) {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return "", "", errors.New("the terminal closed before a confirmation was typed")
	}
	ch := make(chan string, 1)
	t.answer, t.expect = ch, p.Expect
	fmt.Fprintf(t.out, "    ? Type %s to confirm:\n", p.Expect)
	t.mu.Unlock()
	select {
	case t.prompted <- struct{}{}:
	default:
	}
	select {
	case line, ok := <-ch:
		if !ok {
			return "", "", errors.New("the terminal closed before a confirmation was typed")
		}
		return t.User, line, nil
	case <-ctx.Done():
		t.mu.Lock()
		if t.answer == ch {
			t.answer = nil
		}
		t.mu.Unlock()
		fmt.Fprintln(t.out)
		return "", "", ctx.Err()
	}
}

// takeAnswer hands line to a waiting prompt, if any. A command typed while
// a prompt waits (status, cancel…) is run, not taken as the answer, unless
// it is exactly the text asked for.
func (t *ConsoleTransport) takeAnswer(line string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.answer == nil || (isCommandLine(line) && line != t.expect) {
		return false
	}
	t.answer <- line
	t.answer = nil
	return true
}

// isCommandLine tells whether a typed line is a command: it starts with
// the slash command or with one of its verbs.
func isCommandLine(line string) bool {
	if strings.HasPrefix(line, SlashCommand) {
		return true
	}
	w := strings.Fields(line)
	if len(w) == 0 {
		return false
	}
	_, ok := Lookup(strings.ToLower(w[0]))
	return ok
}

func (t *ConsoleTransport) close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closed = true
	if t.answer != nil {
		close(t.answer)
		t.answer = nil
	}
}

// RunConsole reads /restore-drill lines from in and runs them through b,
// whose Transport must be t. Each command runs until it ends or asks for a
// confirmation before the next line is read, so scripted input works. It
// returns at the end of input, once every drill has finished.
func RunConsole(ctx context.Context, b *Bot, t *ConsoleTransport, in io.Reader) error {
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(in)
		sc.Buffer(make([]byte, 4096), 64<<10)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-ctx.Done():
				return
			}
		}
	}()
	var job chan struct{}
	idle := func() {
		if job == nil {
			return
		}
		select {
		case <-job:
			job = nil
		case <-t.prompted:
		case <-ctx.Done():
		}
	}
	defer b.Wait()
	for {
		select {
		case <-ctx.Done():
			t.close()
			return nil
		case line, ok := <-lines:
			if !ok {
				t.close()
				return nil
			}
			if t.takeAnswer(strings.TrimSpace(line)) {
				idle()
				continue
			}
			text := strings.TrimSpace(line)
			text = strings.TrimSpace(strings.TrimPrefix(text, SlashCommand))
			if text == "" || strings.HasPrefix(text, "#") {
				continue
			}
			m, later := b.HandleCommand(ctx, Request{Kind: KindCommand, User: t.User, Channel: "console", Text: text, ResponseURL: "console"})
			_ = t.Ephemeral(ctx, "console", t.User, m)
			if later != nil {
				done := make(chan struct{})
				job = done
				b.Go(func() {
					defer close(done)
					later(ctx)
				})
				idle()
			}
		}
	}
}
