// Package trend draws the trend of an app's drills, restore time and
// database size over the last drills, as a PNG: rendered in Go, no external
// service.
package trend

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"slices"

	"github.com/restore-drill/restore-drill/drill"
)

// Colors of the two lines, for the caption that explains them.
var (
	// RTOColor draws restore time (blue).
	RTOColor = color.RGBA{0x1f, 0x6f, 0xd1, 0xff}
	// SizeColor draws the backup size (orange).
	SizeColor = color.RGBA{0xe0, 0x7b, 0x00, 0xff}
)

const (
	width, height = 720, 260
	margin        = 20
)

// PNG draws restore seconds (blue) and backup size (orange), each scaled to
// its own maximum, for the given reports in time order (oldest first after
// sorting). Failed drills are marked red at the bottom.
func PNG(reports []*drill.Report) ([]byte, error) {
	reps := slices.Clone(reports)
	slices.SortFunc(reps, func(a, b *drill.Report) int { return a.StartedAt.Compare(b.StartedAt) })
	img := image.NewRGBA(image.Rect(0, 0, width, height))
	fill(img, img.Bounds(), color.White)
	grid := color.RGBA{0xe6, 0xe6, 0xe6, 0xff}
	for i := 0; i <= 4; i++ {
		y := margin + i*(height-2*margin)/4
		line(img, margin, y, width-margin, y, grid)
	}
	rto := make([]float64, len(reps))
	size := make([]float64, len(reps))
	for i, r := range reps {
		rto[i] = r.RestoreSeconds
		if r.Backup != nil {
			size[i] = float64(r.Backup.SizeBytes)
		}
	}
	plot(img, rto, RTOColor)
	plot(img, size, SizeColor)
	red := color.RGBA{0xd0, 0x21, 0x21, 0xff}
	for i, r := range reps {
		if r.Result != drill.Passed {
			x := xAt(i, len(reps))
			fill(img, image.Rect(x-3, height-margin+4, x+4, height-margin+11), red)
		}
	}
	var buf bytes.Buffer
	err := png.Encode(&buf, img)
	return buf.Bytes(), err
}

func xAt(i, n int) int {
	if n <= 1 {
		return width / 2
	}
	return margin + i*(width-2*margin)/(n-1)
}

func plot(img *image.RGBA, vs []float64, c color.Color) {
	top := 0.0
	for _, v := range vs {
		top = max(top, v)
	}
	if top == 0 {
		return
	}
	y := func(v float64) int { return height - margin - int(v/top*float64(height-2*margin)) }
	for i := range vs {
		x := xAt(i, len(vs))
		fill(img, image.Rect(x-2, y(vs[i])-2, x+3, y(vs[i])+3), c)
		if i > 0 {
			line(img, xAt(i-1, len(vs)), y(vs[i-1]), x, y(vs[i]), c)
		}
	}
}

func fill(img *image.RGBA, r image.Rectangle, c color.Color) {
	r = r.Intersect(img.Bounds())
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			img.Set(x, y, c)
		}
	}
}

// line draws a 2-pixel line with Bresenham's algorithm.
func line(img *image.RGBA, x0, y0, x1, y1 int, c color.Color) {
	dx, dy := abs(x1-x0), -abs(y1-y0)
	sx, sy := sign(x1-x0), sign(y1-y0)
	e := dx + dy
	for {
		img.Set(x0, y0, c)
		img.Set(x0, y0+1, c)
		if x0 == x1 && y0 == y1 {
			return
		}
		if e2 := 2 * e; e2 >= dy {
			e += dy
			x0 += sx
		} else {
			e += dx
			y0 += sy
		}
	}
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

func sign(v int) int {
	switch {
	case v < 0:
		return -1
	case v > 0:
		return 1
	}
	return 0
}
