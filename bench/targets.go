package bench

import (
	"fmt"
	"io"
	"slices"
	"strings"
)

// Target is one figure the disk cache issue sets for s3edge, as measured
// in this run, beside its reference. With --repeat, both are medians over
// the plays that measured them.
type Target struct {
	Name      string   `json:"name"`
	Want      string   `json:"want"`
	Value     *float64 `json:"value"`     // null when the rows it needs are missing
	Reference *float64 `json:"reference"` // what the comparison is against, when it has one
	Met       bool     `json:"met"`
	Runs      int      `json:"runs"` // plays the value is the median of
}

// targets computes the disk cache issue's figures from rows: hit
// throughput against nginx static, hit latency, coalescing, the Zipf byte
// hit ratio against an exact LRU. A comparison pairs rows of the same
// play, so that each ratio is of participants measured minutes apart.
func targets(rows []Row) []Target {
	runs := 1
	for _, r := range rows {
		runs = max(runs, r.Run)
	}
	// find returns the row of a phase, participant and play; a phase name
	// ending in "@" is a prefix (paced phases carry their rate).
	find := func(phase, participant string, run int) *Row {
		for i := range rows {
			r := &rows[i]
			match := r.Workload == phase || strings.HasSuffix(phase, "@") && strings.HasPrefix(r.Workload, phase)
			if match && r.Participant == participant && max(r.Run, 1) == run && r.Status == statusOK {
				return r
			}
		}
		return nil
	}
	var out []Target
	// add adds a target whose value and reference come from each play:
	// measure returns them, and whether the play measured the value.
	add := func(name, want string, met func(v float64) bool, measure func(run int) (v float64, ref *float64, ok bool)) {
		var vs, refs []float64
		for run := 1; run <= runs; run++ {
			v, ref, ok := measure(run)
			if !ok {
				continue
			}
			vs = append(vs, v)
			if ref != nil {
				refs = append(refs, *ref)
			}
		}
		t := Target{Name: name, Want: want, Value: median(vs), Reference: median(refs), Runs: len(vs)}
		t.Met = t.Value != nil && met(*t.Value)
		out = append(out, t)
	}
	// The hit path, with the Go load generator (hot) and with wrk.
	for _, gen := range []struct{ workload, label string }{{"hot", ""}, {"wrk", " (wrk)"}} {
		for _, c := range []struct {
			size string
			min  float64
		}{{"4KiB", 0.5}, {"256KiB", 0.9}, {"4MiB", 0.8}} {
			phase := gen.workload + "/" + c.size
			add("hit req/s vs nginx-static"+gen.label+", "+c.size, fmt.Sprintf("≥ %gx", c.min), func(x float64) bool { return x >= c.min },
				func(run int) (float64, *float64, bool) {
					s, n := find(phase, "s3edge", run), find(phase, "nginx-static", run)
					if s == nil || n == nil || n.ReqPerSec <= 0 {
						return 0, nil, false
					}
					return s.ReqPerSec / n.ReqPerSec, &n.ReqPerSec, true
				})
		}
	}
	// Hit latency: at a fixed rate below capacity (paced), and with the
	// machine saturated by 32 closed-loop clients (hot), where the tail is
	// mostly the operating system's time slices.
	for _, size := range []string{"4KiB", "64KiB", "256KiB"} {
		for _, gen := range []struct{ phase, label string }{{"paced/" + size + "@", "at a fixed rate"}, {"hot/" + size, "saturated"}} {
			add("hit p99 latency ms "+gen.label+", "+size, "< 2 ms", func(x float64) bool { return x < 2 },
				func(run int) (float64, *float64, bool) {
					s := find(gen.phase, "s3edge", run)
					if s == nil {
						return 0, nil, false
					}
					var ref *float64
					if n := find(gen.phase, "nginx-static", run); n != nil {
						ref = &n.P99Ms
					}
					return s.P99Ms, ref, true
				})
		}
	}
	for _, phase := range groups(rows) {
		if !strings.HasPrefix(phase, "coalesce") {
			continue
		}
		// Every play must make one upstream GET per key: the worst counts.
		worst := 0.0
		add(phase+": upstream GETs per cold key", "= 1", func(float64) bool { return worst == 1 },
			func(run int) (float64, *float64, bool) {
				s := find(phase, "s3edge", run)
				if s == nil {
					return 0, nil, false
				}
				keys := float64(max(s.Planned/int64(max(s.Concurrency, 1)), 1))
				v := float64(s.UpstreamGets) / keys
				worst = max(worst, v)
				return v, nil, true
			})
		add(phase+": TTFB p50 minus the upstream's own, ms", "≤ 5 ms", func(x float64) bool { return x <= 5 },
			func(run int) (float64, *float64, bool) {
				s := find(phase, "s3edge", run)
				if s == nil || s.TTFBVsUpstreamMs == nil {
					return 0, nil, false
				}
				var ref *float64
				if d := find(phase, "direct", run); d != nil {
					ref = &d.TTFBP50Ms
				}
				return *s.TTFBVsUpstreamMs, ref, true
			})
	}
	add("zipf byte hit ratio", "≥ 0.69", func(x float64) bool { return x >= 0.69 },
		func(run int) (float64, *float64, bool) {
			s := find("zipf", "s3edge", run)
			if s == nil {
				return 0, nil, false
			}
			return s.ByteHitRatio, s.LRUByteHitRatio, true
		})
	return out
}

// median returns the median of vs (the mean of the middle two for an even
// count), or nil for none.
func median(vs []float64) *float64 {
	if len(vs) == 0 {
		return nil
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + m) / 2
	}
	return &m
}

func f64p(v float64) *float64 { return &v }

// writeTargets prints the targets as a table.
func writeTargets(w io.Writer, ts []Target) {
	fmt.Fprintf(w, "\n## Targets of the disk cache issue (s3edge)\n\n| figure | target | measured | reference | met |\n|---|---|---:|---:|---|\n")
	for _, t := range ts {
		met := "no"
		switch {
		case t.Met:
			met = "yes"
		case t.Value == nil: // its workload was not run, or failed
			met = "not measured"
		}
		name := t.Name
		if t.Runs > 1 {
			name += fmt.Sprintf(" (median of %d plays)", t.Runs)
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s |\n", name, t.Want, optNum3(t.Value), optNum3(t.Reference), met)
	}
	fmt.Fprintf(w, "\nReferences: nginx-static req/s and p99 for the hit path, direct's TTFB p50 under the same 50-client burst, the exact LRU for the Zipf trace.\n")
}

func optNum3(v *float64) string {
	if v == nil {
		return "–"
	}
	if *v >= 1000 || *v <= -1000 {
		return fmt.Sprintf("%.0f", *v)
	}
	return fmt.Sprintf("%.3g", *v)
}
