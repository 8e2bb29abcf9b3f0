package bench

import (
	"fmt"
	"io"
	"strings"
)

// Target is one figure the disk cache issue sets for s3edge, as measured
// in this run, beside its reference.
type Target struct {
	Name      string   `json:"name"`
	Want      string   `json:"want"`
	Value     *float64 `json:"value"`     // null when the rows it needs are missing
	Reference *float64 `json:"reference"` // what the comparison is against, when it has one
	Met       bool     `json:"met"`
}

// targets computes the disk cache issue's figures from rows: hit
// throughput against nginx static, hit latency, coalescing, the Zipf byte
// hit ratio against an exact LRU.
func targets(rows []Row) []Target {
	find := func(workload, participant string) *Row {
		for i := range rows {
			if rows[i].Workload == workload && rows[i].Participant == participant && rows[i].Status == statusOK {
				return &rows[i]
			}
		}
		return nil
	}
	var out []Target
	add := func(name, want string, value, ref *float64, met func(v float64) bool) {
		t := Target{Name: name, Want: want, Value: value, Reference: ref}
		t.Met = value != nil && met(*value)
		out = append(out, t)
	}
	// The hit path, with the Go load generator (hot) and with wrk.
	for _, gen := range []struct{ workload, label string }{{"hot", ""}, {"wrk", " (wrk)"}} {
		for _, c := range []struct {
			size string
			min  float64
		}{{"4KiB", 0.5}, {"256KiB", 0.9}, {"4MiB", 0.8}} {
			var v, ref *float64
			s, n := find(gen.workload+"/"+c.size, "s3edge"), find(gen.workload+"/"+c.size, "nginx-static")
			if s != nil && n != nil && n.ReqPerSec > 0 {
				v, ref = f64p(s.ReqPerSec/n.ReqPerSec), f64p(n.ReqPerSec)
			}
			add("hit req/s vs nginx-static"+gen.label+", "+c.size, fmt.Sprintf("≥ %gx", c.min), v, ref, func(x float64) bool { return x >= c.min })
		}
	}
	// Hit latency: at a fixed rate below capacity (paced), and with the
	// machine saturated by 32 closed-loop clients (hot), where the tail is
	// mostly the operating system's time slices.
	findPrefix := func(prefix, participant string) *Row {
		for i := range rows {
			if strings.HasPrefix(rows[i].Workload, prefix) && rows[i].Participant == participant && rows[i].Status == statusOK {
				return &rows[i]
			}
		}
		return nil
	}
	for _, size := range []string{"4KiB", "64KiB", "256KiB"} {
		for _, gen := range []struct{ prefix, label string }{{"paced/" + size + "@", "at a fixed rate"}, {"hot/" + size, "saturated"}} {
			var v, ref *float64
			if s := findPrefix(gen.prefix, "s3edge"); s != nil {
				v = f64p(s.P99Ms)
			}
			if n := findPrefix(gen.prefix, "nginx-static"); n != nil {
				ref = f64p(n.P99Ms)
			}
			add("hit p99 latency ms "+gen.label+", "+size, "< 2 ms", v, ref, func(x float64) bool { return x < 2 })
		}
	}
	for _, r := range rows {
		if r.Participant != "s3edge" || r.Status != statusOK || len(r.Workload) < 8 || r.Workload[:8] != "coalesce" {
			continue
		}
		keys := float64(max(r.Planned/int64(max(r.Concurrency, 1)), 1))
		add(r.Workload+": upstream GETs per cold key", "= 1", f64p(float64(r.UpstreamGets)/keys), nil,
			func(x float64) bool { return x == 1 })
		var ref *float64
		if d := find(r.Workload, "direct"); d != nil {
			ref = f64p(d.TTFBP50Ms)
		}
		if r.TTFBVsUpstreamMs != nil {
			add(r.Workload+": TTFB p50 minus the upstream's own, ms", "≤ 5 ms", f64p(*r.TTFBVsUpstreamMs), ref,
				func(x float64) bool { return x <= 5 })
		}
	}
	if s := find("zipf", "s3edge"); s != nil {
		add("zipf byte hit ratio", "≥ 0.69", f64p(s.ByteHitRatio), s.LRUByteHitRatio, func(x float64) bool { return x >= 0.69 })
	} else {
		add("zipf byte hit ratio", "≥ 0.69", nil, nil, nil)
	}
	return out
}

func f64p(v float64) *float64 { return &v }

// writeTargets prints the targets as a table.
func writeTargets(w io.Writer, ts []Target) {
	fmt.Fprintf(w, "\n## Targets of the disk cache issue (s3edge)\n\n| figure | target | measured | reference | met |\n|---|---|---:|---:|---|\n")
	for _, t := range ts {
		met := "no"
		if t.Met {
			met = "yes"
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s |\n", t.Name, t.Want, optNum3(t.Value), optNum3(t.Reference), met)
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
