package bench

import (
	"bytes"
	"fmt"
	"html"
	"math"
)

// Charts are SVG written by hand: two chart kinds do not justify a plotting
// dependency, and SVG renders in any browser and on GitHub.

// participantColor gives each participant the same color in every chart;
// s3edge is the one to spot.
func participantColor(name string) string {
	switch name {
	case "direct":
		return "#7f7f7f"
	case "s3edge":
		return "#d62728"
	case "nginx-static":
		return "#2ca02c"
	case "nginx-cache":
		return "#1f77b4"
	case "varnish":
		return "#9467bd"
	}
	return "#ff7f0e"
}

const svgFont = `font-family="DejaVu Sans, Helvetica, Arial, sans-serif"`

// latencyCDFSVG draws the latency CDF of every successful participant on
// one phase, latency on a log axis (hits and misses differ by orders of
// magnitude).
func latencyCDFSVG(phase string, rows []Row) []byte {
	const w, h, left, right, top, bottom = 760, 440, 70, 170, 50, 60
	pw, ph := float64(w-left-right), float64(h-top-bottom)
	var series []Row
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, r := range rows {
		if r.Workload != phase || r.Status != statusOK || len(r.cdf) == 0 {
			continue
		}
		series = append(series, r)
		for _, p := range r.cdf {
			if p[0] > 0 {
				lo, hi = math.Min(lo, p[0]), math.Max(hi, p[0])
			}
		}
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" %s font-size="12">`+"\n", w, h, w, h, svgFont)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%d" y="28" font-size="16" font-weight="bold">%s: latency CDF</text>`+"\n", left, html.EscapeString(phase))
	if len(series) == 0 {
		fmt.Fprintf(&b, `<text x="%d" y="%d">no successful participant</text></svg>`+"\n", left, top+40)
		return b.Bytes()
	}
	// Whole decades around the data.
	dlo, dhi := math.Floor(math.Log10(lo)), math.Ceil(math.Log10(hi))
	if dhi <= dlo {
		dhi = dlo + 1
	}
	x := func(v float64) float64 {
		v = math.Max(v, math.Pow(10, dlo))
		return left + (math.Log10(v)-dlo)/(dhi-dlo)*pw
	}
	y := func(f float64) float64 { return top + (1-f)*ph }
	// Grid and axes.
	for d := dlo; d <= dhi; d++ {
		for m := 1; m < 10; m++ {
			v := float64(m) * math.Pow(10, d)
			if d == dhi && m > 1 {
				break
			}
			color := "#eeeeee"
			if m == 1 {
				color = "#cccccc"
				fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", x(v), h-bottom+18, msLabel(v))
			}
			fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="%s"/>`+"\n", x(v), top, x(v), h-bottom, color)
		}
	}
	for _, f := range []float64{0, 0.25, 0.5, 0.75, 0.9, 1} {
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#dddddd"/>`+"\n", left, y(f), w-right, y(f))
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", left-6, y(f)+4, map[bool]string{true: "max", false: fmt.Sprintf("p%g", 100*f)}[f == 1])
	}
	// p99 matters most and sits 1% under the top: a dashed line, labelled
	// inside the plot.
	fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#bbbbbb" stroke-dasharray="4 3"/>`+"\n", left, y(0.99), w-right, y(0.99))
	fmt.Fprintf(&b, `<text x="%d" y="%.1f" font-size="10" fill="#777">p99</text>`+"\n", left+4, y(0.99)+11)
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.0f" height="%.0f" fill="none" stroke="#444"/>`+"\n", left, top, pw, ph)
	fmt.Fprintf(&b, `<text x="%.0f" y="%d" text-anchor="middle">latency (ms, log scale)</text>`+"\n", left+pw/2, h-18)
	fmt.Fprintf(&b, `<text transform="translate(18 %.0f) rotate(-90)" text-anchor="middle">fraction of requests ≤ latency</text>`+"\n", top+ph/2)
	for i, r := range series {
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2" points="`, participantColor(r.Participant))
		for _, p := range r.cdf {
			fmt.Fprintf(&b, "%.1f,%.1f ", x(p[0]), y(p[1]))
		}
		b.WriteString("\"/>\n")
		ly := top + 10 + 22*i
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="3"/>`+"\n", w-right+12, ly, w-right+32, ly, participantColor(r.Participant))
		fmt.Fprintf(&b, `<text x="%d" y="%d">%s</text>`+"\n", w-right+38, ly+4, html.EscapeString(r.Participant))
		fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="10" fill="#555">p50 %s p99 %s</text>`+"\n", w-right+38, ly+15, msLabel(r.P50Ms), msLabel(r.P99Ms))
	}
	b.WriteString("</svg>\n")
	return b.Bytes()
}

// throughputSVG draws one small panel per phase, a bar of requests per
// second per participant, each panel on its own scale (4 KiB hits and
// video ranges differ by orders of magnitude).
func throughputSVG(rows []Row) []byte {
	phases := groups(rows)
	const cols, pw, pad, barH, gap, labelW = 3, 300, 20, 16, 6, 92
	maxBars := 1
	for _, g := range phases {
		n := 0
		for _, r := range rows {
			if r.Workload == g {
				n++
			}
		}
		maxBars = max(maxBars, n)
	}
	panelH := 34 + maxBars*(barH+gap)
	nrows := (len(phases) + cols - 1) / cols
	w, h := cols*(pw+pad)+pad, 50+nrows*(panelH+pad)
	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" %s font-size="11">`+"\n", w, h, w, h, svgFont)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%d" y="30" font-size="16" font-weight="bold">Throughput (requests/s; each panel on its own scale)</text>`+"\n", pad)
	for i, g := range phases {
		x0, y0 := pad+(i%cols)*(pw+pad), 50+(i/cols)*(panelH+pad)
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="#fafafa" stroke="#dddddd"/>`+"\n", x0, y0, pw, panelH)
		fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="13" font-weight="bold">%s</text>`+"\n", x0+8, y0+18, html.EscapeString(g))
		top := 0.0
		for _, r := range rows {
			if r.Workload == g && r.Status == statusOK {
				top = math.Max(top, r.ReqPerSec)
			}
		}
		j := 0
		for _, r := range rows {
			if r.Workload != g {
				continue
			}
			by := y0 + 30 + j*(barH+gap)
			j++
			fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end">%s</text>`+"\n", x0+labelW-4, by+12, html.EscapeString(r.Participant))
			if r.Status != statusOK {
				fmt.Fprintf(&b, `<text x="%d" y="%d" fill="#999" font-style="italic">%s</text>`+"\n", x0+labelW+2, by+12, r.Status)
				continue
			}
			bw := 0.0
			if top > 0 {
				bw = r.ReqPerSec / top * float64(pw-labelW-60)
			}
			fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"/>`+"\n", x0+labelW, by, math.Max(bw, 1), barH, participantColor(r.Participant))
			fmt.Fprintf(&b, `<text x="%.1f" y="%d">%s</text>`+"\n", float64(x0+labelW)+math.Max(bw, 1)+4, by+12, rateLabel(r.ReqPerSec))
		}
	}
	b.WriteString("</svg>\n")
	return b.Bytes()
}

func msLabel(v float64) string {
	switch {
	case v >= 1000:
		return fmt.Sprintf("%gs", v/1000)
	case v >= 1:
		return fmt.Sprintf("%.3gms", v)
	}
	return fmt.Sprintf("%.3gms", v)
}

func rateLabel(v float64) string {
	if v >= 10000 {
		return fmt.Sprintf("%.1fk", v/1000)
	}
	return fmt.Sprintf("%.0f", v)
}
