package trend_test

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"os"
	"testing"
	"time"

	"github.com/restore-drill/restore-drill/drill"
	"github.com/restore-drill/restore-drill/drill/trend"
)

// reports are n daily drills of a growing database; the ones in failed
// failed, and the one in cancelled was cancelled.
func reports(n int, failed map[int]bool, cancelled int) []*drill.Report {
	start := time.Date(2026, 11, 1, 3, 0, 0, 0, time.UTC)
	var reps []*drill.Report
	for i := range n {
		r := &drill.Report{App: "shop", StartedAt: start.Add(time.Duration(i) * 24 * time.Hour), RestoreSeconds: float64(10 + i*3),
			Backup: &drill.ReportBackup{SizeBytes: int64(40_000_000 + i*1_500_000)}, Result: drill.Passed}
		if failed[i] {
			r.Result = drill.Failed
		}
		if i == cancelled {
			r.Result, r.Cancelled, r.RestoreSeconds = drill.Failed, true, 0
		}
		reps = append(reps, r)
	}
	return reps
}

func decode(t *testing.T, reps []*drill.Report) image.Image {
	t.Helper()
	data, err := trend.PNG(reps)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("not a PNG: %v", err)
	}
	if b := img.Bounds(); b.Dx() != trend.Width || b.Dy() != trend.Height {
		t.Fatalf("chart is %dx%d, want %dx%d", b.Dx(), b.Dy(), trend.Width, trend.Height)
	}
	if dir := os.Getenv("TREND_PNG_DIR"); dir != "" {
		_ = os.WriteFile(dir+"/"+t.Name()+".png", data, 0o644)
	}
	return img
}

// pixels counts the pixels of exactly colour c.
func pixels(img image.Image, c color.RGBA) int {
	n := 0
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			if color.RGBAModel.Convert(img.At(x, y)).(color.RGBA) == c {
				n++
			}
		}
	}
	return n
}

// TestPNG_IsAChartOfTheExpectedSizeWithFailuresMarked: the trend decodes
// as a PNG of the documented size, draws restore time and size, and marks
// failed drills in red: more red for more failures, none when all passed.
func TestPNG_IsAChartOfTheExpectedSizeWithFailuresMarked(t *testing.T) {
	t.Parallel()
	none := pixels(decode(t, reports(8, nil, -1)), trend.FailedColor)
	one := decode(t, reports(8, map[int]bool{3: true}, -1))
	two := pixels(decode(t, reports(8, map[int]bool{3: true, 6: true}, 5)), trend.FailedColor)
	if pixels(one, trend.RTOColor) < 500 || pixels(one, trend.SizeColor) < 500 {
		t.Errorf("restore time (%d px) or size (%d px) not drawn", pixels(one, trend.RTOColor), pixels(one, trend.SizeColor))
	}
	red := pixels(one, trend.FailedColor)
	// The legend's "failed drill" key is red too, so compare with it.
	if none != 0 || red == 0 || two <= red {
		t.Errorf("red pixels: %d with no failure, %d with one, %d with two; want 0 < one < two", none, red, two)
	}
}

// TestPNG_EdgeCases: no drill, one drill, and drills with no backup still
// draw a chart.
func TestPNG_EdgeCases(t *testing.T) {
	t.Parallel()
	decode(t, nil)
	decode(t, reports(1, nil, -1))
	reps := reports(3, map[int]bool{1: true}, -1)
	reps[1].Backup = nil
	decode(t, reps)
}
