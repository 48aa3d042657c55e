package heroku

import (
	"context"
	"strings"

	"github.com/restore-drill/restore-drill/drill"
)

// The Advanced tier. Plans heroku-postgresql:advanced* and :performance*
// are served by the /data/postgres/v1 API (`heroku data:pg:*`); the
// /client/v11 endpoints the drill uses answer 404 for them, so a drill
// would wait for nothing until a timeout. The provider refuses them at
// once instead, before it provisions or changes anything.

// advancedTier reports whether plan (with or without "heroku-postgresql:")
// is of the Advanced tier.
func advancedTier(plan string) bool {
	plan = strings.TrimPrefix(plan, "heroku-postgresql:")
	return strings.HasPrefix(plan, "advanced") || strings.HasPrefix(plan, "performance")
}

// tierRefusal is the one sentence that refuses an Advanced-tier database.
func tierRefusal(app, plan string) error {
	return drill.Errorf(drill.EREFUSED, "the database of %s is on the Heroku Postgres Advanced tier (plan %s), which restore-drill does not support: Heroku serves that tier's backups through `heroku data:pg:*`, not pg:backups; nothing was changed", app, plan)
}

// tierOr turns err, a data API error about add-on addonID, into the tier
// refusal when the add-on is of the Advanced tier (the data API answers
// 404 for it); otherwise it returns err. It costs a call only on a 404.
func (p *Provider) tierOr(ctx context.Context, app, addonID string, err error) error {
	if drill.ErrorCode(err) != drill.ENOTFOUND {
		return err
	}
	if a, aerr := p.addon(ctx, addonID); aerr == nil && advancedTier(a.Plan.Name) {
		return tierRefusal(app, a.Plan.Name)
	}
	return err
}
