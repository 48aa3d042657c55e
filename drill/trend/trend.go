// Package trend draws the trend of an app's drills as a PNG, with
// gonum.org/v1/plot: restore time and backup size over the drills' dates,
// with axes, units, a legend, and failed drills marked.
package trend

import (
	"bytes"
	"fmt"
	"image/color"
	"slices"
	"strconv"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/restore-drill/restore-drill/drill"
)

// Colours of the chart, for the caption that explains it and for tests.
var (
	// RTOColor draws restore time (blue).
	RTOColor = color.RGBA{0x1f, 0x6f, 0xd1, 0xff}
	// SizeColor draws the backup size (orange).
	SizeColor = color.RGBA{0xe0, 0x7b, 0x00, 0xff}
	// FailedColor marks failed drills (red).
	FailedColor = color.RGBA{0xd0, 0x21, 0x21, 0xff}
)

// Width and Height are the PNG's size in pixels: wide enough for a dozen
// dated ticks, with type large enough to read in Slack's preview, which
// scales the image down to about 360 pixels wide.
const (
	Width, Height = 1000, 640
	dpi           = 96
)

// PNG draws, for the given reports in date order, the restore time (top,
// seconds) and the backup size (bottom, in the unit that suits the
// largest), each failed drill marked with a red dot. A cancelled drill has
// no restore time and is not a failure: only its size is drawn.
func PNG(reports []*drill.Report) ([]byte, error) {
	reps := slices.Clone(reports)
	slices.SortFunc(reps, func(a, b *drill.Report) int { return a.StartedAt.Compare(b.StartedAt) })
	var maxSize int64
	for _, r := range reps {
		if r.Backup != nil {
			maxSize = max(maxSize, r.Backup.SizeBytes)
		}
	}
	div, unit := sizeUnit(maxSize)
	var rto, size, failedRTO, failedSize plotter.XYs
	for _, r := range reps {
		x := float64(r.StartedAt.Unix())
		failed := r.Result != drill.Passed && !r.Cancelled
		if !r.Cancelled {
			rto = append(rto, plotter.XY{X: x, Y: r.RestoreSeconds})
			if failed {
				failedRTO = append(failedRTO, plotter.XY{X: x, Y: r.RestoreSeconds})
			}
		}
		if r.Backup != nil {
			y := float64(r.Backup.SizeBytes) / div
			size = append(size, plotter.XY{X: x, Y: y})
			if failed {
				failedSize = append(failedSize, plotter.XY{X: x, Y: y})
			}
		}
	}
	title := "Restore drills"
	if len(reps) > 0 {
		title = fmt.Sprintf("Restore drills of %s: the last %d", reps[0].App, len(reps))
	}
	top, err := panel(title, "Restore time (s)", "restore time", rto, failedRTO, RTOColor)
	if err != nil {
		return nil, err
	}
	bottom, err := panel("", "Backup size ("+unit+")", "backup size", size, failedSize, SizeColor)
	if err != nil {
		return nil, err
	}
	bottom.X.Label.Text = "Drill date (UTC)"
	span(reps, top, bottom)

	img := vgimg.NewWith(vgimg.UseWH(px(Width), px(Height)), vgimg.UseDPI(dpi), vgimg.UseBackgroundColor(color.White))
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 2, Cols: 1, PadX: vg.Millimeter, PadY: 4 * vg.Millimeter,
		PadTop: 2 * vg.Millimeter, PadBottom: 2 * vg.Millimeter, PadLeft: 2 * vg.Millimeter, PadRight: 4 * vg.Millimeter}
	canvases := plot.Align([][]*plot.Plot{{top}, {bottom}}, tiles, dc)
	top.Draw(canvases[0][0])
	bottom.Draw(canvases[1][0])
	var buf bytes.Buffer
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(&buf); err != nil {
		return nil, fmt.Errorf("encode the trend chart: %w", err)
	}
	return buf.Bytes(), nil
}

// px is n pixels as a length at the chart's resolution.
func px(n int) vg.Length { return vg.Length(n) * vg.Inch / dpi }

// panel is one of the chart's two plots: a line through pts with a dot at
// each drill, failed drills dotted red.
func panel(title, yLabel, name string, pts, failed plotter.XYs, c color.Color) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = title
	p.Title.TextStyle.Font.Size = vg.Points(18)
	p.Y.Label.Text = yLabel
	p.Y.Min = 0
	for _, a := range []*plot.Axis{&p.X, &p.Y} {
		a.Label.TextStyle.Font.Size = vg.Points(14)
		a.Tick.Label.Font.Size = vg.Points(12)
	}
	p.X.Tick.Marker = dayTicks{}
	p.Y.Tick.Marker = plainTicks{}
	p.Legend.Top, p.Legend.Left = true, true
	p.Legend.TextStyle.Font.Size = vg.Points(13)
	p.Add(plotter.NewGrid())
	if len(pts) > 0 {
		// Headroom above the highest point keeps the legend off the line.
		top := 0.0
		for _, xy := range pts {
			top = max(top, xy.Y)
		}
		p.Y.Max = max(top*1.35, 1)
		line, dots, err := plotter.NewLinePoints(pts)
		if err != nil {
			return nil, fmt.Errorf("draw the %s: %w", name, err)
		}
		line.Color, line.Width = c, vg.Points(2.5)
		dots.Color, dots.Shape, dots.Radius = c, draw.CircleGlyph{}, vg.Points(3.5)
		p.Add(line, dots)
		p.Legend.Add(name, line, dots)
	}
	if len(failed) > 0 {
		marks, err := plotter.NewScatter(failed)
		if err != nil {
			return nil, fmt.Errorf("mark the failed drills: %w", err)
		}
		marks.Color, marks.Shape, marks.Radius = FailedColor, draw.CircleGlyph{}, vg.Points(6)
		p.Add(marks)
		p.Legend.Add("failed drill", marks)
	}
	return p, nil
}

// span gives both plots the same dated x range, padded half a day each
// side so a single drill or the first and last are not on the frame.
func span(reps []*drill.Report, plots ...*plot.Plot) {
	lo, hi := time.Now().Add(-24*time.Hour), time.Now()
	if len(reps) > 0 {
		lo, hi = reps[0].StartedAt, reps[len(reps)-1].StartedAt
	}
	pad := max(hi.Sub(lo)/20, 12*time.Hour)
	for _, p := range plots {
		p.X.Min, p.X.Max = float64(lo.Add(-pad).Unix()), float64(hi.Add(pad).Unix())
	}
}

// dayTicks marks the x axis (Unix seconds) at midnight UTC, labelled
// with the date: every day over a short span, fewer over a long one.
type dayTicks struct{}

func (dayTicks) Ticks(lo, hi float64) []plot.Tick {
	const day = 24 * 60 * 60
	first := time.Unix(int64(lo), 0).UTC().Truncate(24 * time.Hour)
	step := max(1, int((hi-lo)/day/10)+1)
	var out []plot.Tick
	for i, t := 0, first; float64(t.Unix()) <= hi; i, t = i+1, t.Add(24*time.Hour) {
		if float64(t.Unix()) < lo {
			continue
		}
		tk := plot.Tick{Value: float64(t.Unix())}
		if i%step == 0 {
			tk.Label = t.Format("Jan 2")
		}
		out = append(out, tk)
	}
	return out
}

// plainTicks are gonum's default ticks, labelled without trailing zeros.
type plainTicks struct{}

func (plainTicks) Ticks(lo, hi float64) []plot.Tick {
	ticks := plot.DefaultTicks{}.Ticks(lo, hi)
	for i := range ticks {
		if ticks[i].Label != "" {
			ticks[i].Label = strconv.FormatFloat(ticks[i].Value, 'g', 4, 64)
		}
	}
	return ticks
}

// sizeUnit is the divisor and unit (1000-based, as drill.HumanBytes) that
// suit a largest size of n bytes.
func sizeUnit(n int64) (float64, string) {
	div := 1.0
	for _, u := range []string{"B", "kB", "MB", "GB", "TB"} {
		if float64(n) < div*1000 || u == "TB" {
			return div, u
		}
		div *= 1000
	}
	return div, "TB"
}
