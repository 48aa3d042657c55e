package bot

import (
	"context"
	"net/url"
	"strings"
	"sync"
)

// Workspacer is implemented by transports that know the workspace's web
// address (Slack's auth.test), from which links to messages are built
// with no call per link.
type Workspacer interface {
	WorkspaceURL(ctx context.Context) (string, error)
}

var _ Workspacer = (*SlackTransport)(nil)

// WorkspaceURL returns the workspace's address, https://NAME.slack.com/.
func (t *SlackTransport) WorkspaceURL(ctx context.Context) (string, error) {
	r, err := t.Client.AuthTestContext(ctx)
	if err != nil {
		return "", classify("auth.test", err)
	}
	return r.URL, nil
}

// workspace caches the workspace's address once known.
type workspace struct {
	mu  sync.Mutex
	url string
}

// workspaceURL returns the workspace's address, asking Slack once when
// fetch allows it, or "" while it is unknown.
func (b *Bot) workspaceURL(ctx context.Context, fetch bool) string {
	b.workspace.mu.Lock()
	base := b.workspace.url
	b.workspace.mu.Unlock()
	if base != "" || !fetch {
		return base
	}
	w, ok := b.cfg.Transport.(Workspacer)
	if !ok {
		return ""
	}
	u, err := w.WorkspaceURL(ctx)
	if err != nil || !strings.HasPrefix(u, "https://") {
		loggerFrom(ctx, b.cfg.Logger).Warn("cannot learn the workspace's address: messages go without links to prompts", "err", err)
		return ""
	}
	b.workspace.mu.Lock()
	b.workspace.url = u
	b.workspace.mu.Unlock()
	return u
}

// messageLink returns a link to message ts of channel, a reply in thread
// threadTS when set, or "" when the workspace's address is unknown. fetch
// allows asking Slack for it (never before an ack).
func (b *Bot) messageLink(ctx context.Context, channel, ts, threadTS string, fetch bool) string {
	if channel == "" || ts == "" {
		return ""
	}
	base := b.workspaceURL(ctx, fetch)
	if base == "" {
		return ""
	}
	// Slack's permalink form (chat.getPermalink's): the ts without its dot;
	// a reply names its thread and channel.
	link := strings.TrimSuffix(base, "/") + "/archives/" + url.PathEscape(channel) + "/p" + strings.ReplaceAll(ts, ".", "")
	if threadTS != "" && threadTS != ts {
		link += "?thread_ts=" + url.QueryEscape(threadTS) + "&cid=" + url.QueryEscape(channel)
	}
	return link
}
