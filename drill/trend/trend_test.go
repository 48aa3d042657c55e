package trend_test

import (
	"bytes"
	"image/png"
	"testing"
	"time"

	"github.com/restore-drill/restore-drill/drill"
	"github.com/restore-drill/restore-drill/drill/trend"
)

func TestPNG_DrawsBothLinesAndFailures(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	var reps []*drill.Report
	for i := range 5 {
		r := &drill.Report{StartedAt: start.Add(time.Duration(i) * 24 * time.Hour), RestoreSeconds: float64(10 + i*3),
			Backup: &drill.ReportBackup{SizeBytes: int64(1000 + i*100)}, Result: drill.Passed}
		if i == 3 {
			r.Result = drill.Failed
		}
		reps = append(reps, r)
	}
	data, err := trend.PNG(reps)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("not a PNG: %v", err)
	}
	counts := map[string]int{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			switch {
			case r>>8 == 0x1f && g>>8 == 0x6f && bl>>8 == 0xd1:
				counts["rto"]++
			case r>>8 == 0xe0 && g>>8 == 0x7b:
				counts["size"]++
			case r>>8 == 0xd0 && g>>8 == 0x21:
				counts["failed"]++
			}
		}
	}
	if counts["rto"] < 100 || counts["size"] < 100 || counts["failed"] == 0 {
		t.Errorf("pixels %v: want both lines drawn and the failed drill marked", counts)
	}
	if _, err := trend.PNG(nil); err != nil {
		t.Errorf("no drills: %v", err)
	}
}
