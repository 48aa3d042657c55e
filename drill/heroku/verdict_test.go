package heroku_test

import (
	"testing"

	"github.com/restore-drill/restore-drill/drill/drilltest"
)

// Issue 10: a broad schema's drills and emergency restore pass on the fake
// Heroku too; an altered restore fails naming each difference.
func TestProvider_BroadSchema(t *testing.T) {
	t.Parallel()
	drilltest.ExerciseBroadSchema(t, harness())
}
