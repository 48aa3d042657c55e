package bot

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// Access is who may do what, from configuration. An empty list of channels
// or apps means no restriction of that kind. Destructive commands and
// confirmations are closed by default: with neither AllowedUsers nor
// AdminGroup, nobody may run them unless Anyone says so explicitly.
type Access struct {
	// Anyone lets everyone run destructive commands and confirm when
	// neither AllowedUsers nor AdminGroup is set (DRILL_ALLOW_ANYONE).
	Anyone bool
	// AllowedUsers may run destructive commands and confirm (user ids).
	AllowedUsers []string
	// AdminGroup is a user group (S…) whose members may too.
	AdminGroup string
	// AllowedChannels are the channels the bot answers in.
	AllowedChannels []string
	// Apps are the apps the bot may touch.
	Apps []string
}

// Describe says in one line what Access allows, for the start-up log.
func (a Access) Describe() string {
	list := func(l []string, none string) string {
		if len(l) == 0 {
			return none
		}
		return strings.Join(l, ",")
	}
	who := "nobody"
	if a.Anyone {
		who = "anyone"
	}
	if a.namesSomeone() {
		group := a.AdminGroup
		if group == "" {
			group = "(none)"
		}
		who = "users " + list(a.AllowedUsers, "(none)") + " and members of user group " + group
	}
	return fmt.Sprintf("destructive commands and confirmations: %s; channels: %s; apps: %s",
		who, list(a.AllowedChannels, "any"), list(a.Apps, "any"))
}

// namesSomeone reports whether a user or a group is allowed by name.
func (a Access) namesSomeone() bool { return len(a.AllowedUsers) > 0 || a.AdminGroup != "" }

func (a Access) channelAllowed(ch string) bool {
	return len(a.AllowedChannels) == 0 || slices.Contains(a.AllowedChannels, ch)
}

func (a Access) appAllowed(app string) bool {
	return len(a.Apps) == 0 || slices.Contains(a.Apps, app)
}

// mayReadAccess reports whether user may be told the access configuration
// (the allowed apps and channels) in a refusal: only someone allowed to run
// destructive commands, so that a refusal tells an outsider nothing.
func (b *Bot) mayReadAccess(ctx context.Context, user string) bool {
	ok, err := b.auth.allowed(ctx, user)
	return err == nil && ok
}

// authorizer decides who may run destructive commands, caching the admin
// group's members briefly.
type authorizer struct {
	access  Access
	members func(ctx context.Context, group string) ([]string, error)
	ttl     time.Duration
	// maxAge is the oldest list trusted while refreshing fails; past it
	// destructive checks fail closed.
	maxAge time.Duration
	now    func() time.Time

	mu        sync.Mutex
	cached    []string
	fetchedAt time.Time
	fetching  bool
}

// ErrGroupUnknown is returned by allowed when the admin group's members
// cannot be read and the cached list, if any, is too old to trust.
var ErrGroupUnknown = errors.New("cannot check your membership in the admin group right now: try again")

// allowed reports whether user may run destructive commands and confirm.
// It reads the group cache; when the cache is stale it refreshes it, in the
// background if there is a list young enough (maxAge) to use meanwhile.
// Past maxAge it refreshes in line and, if that fails, fails closed.
func (z *authorizer) allowed(ctx context.Context, user string) (bool, error) {
	a := z.access
	if !a.namesSomeone() {
		return a.Anyone, nil
	}
	if slices.Contains(a.AllowedUsers, user) {
		return true, nil
	}
	if a.AdminGroup == "" {
		return false, nil
	}
	z.mu.Lock()
	age := z.now().Sub(z.fetchedAt)
	fresh := !z.fetchedAt.IsZero() && age < z.ttl
	have := !z.fetchedAt.IsZero() && (z.maxAge <= 0 || age < z.maxAge)
	members := z.cached
	start := !fresh && have && !z.fetching
	if start {
		z.fetching = true
	}
	z.mu.Unlock()
	if start {
		go func() { _, _ = z.refresh(context.WithoutCancel(ctx)) }()
	}
	if !have {
		var err error
		members, err = z.refresh(ctx)
		if err != nil {
			return false, fmt.Errorf("%w: %w", ErrGroupUnknown, err)
		}
	}
	return slices.Contains(members, user), nil
}

// refresh fetches the group's members.
func (z *authorizer) refresh(ctx context.Context) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	members, err := z.members(ctx, z.access.AdminGroup)
	z.mu.Lock()
	defer z.mu.Unlock()
	z.fetching = false
	if err != nil {
		return nil, fmt.Errorf("list the members of user group %s: %w", z.access.AdminGroup, err)
	}
	z.cached, z.fetchedAt = members, z.now()
	return members, nil
}
