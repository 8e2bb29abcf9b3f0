package bench

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Report is report.json: the machine and settings, then one Row per
// workload phase and participant. Field names are a contract: fields may
// be added, never renamed; ratios are in [0, 1], times in milliseconds,
// sizes in bytes, money in US dollars.
type Report struct {
	Machine   Machine        `json:"machine"`
	Settings  Settings       `json:"settings"`
	Workloads []WorkloadInfo `json:"workloads"`
	Results   []Row          `json:"results"`
	Targets   []Target       `json:"targets"`
}

// Settings are the knobs that shape every figure.
type Settings struct {
	Quick           bool    `json:"quick"`
	Repeat          int     `json:"repeat"` // plays of each workload
	FirstByteMs     float64 `json:"upstream_first_byte_ms"`
	JitterMs        float64 `json:"upstream_jitter_ms"`
	BytesPerSec     int64   `json:"upstream_bytes_per_sec"`
	PricePerGB      float64 `json:"price_per_gb_usd"`
	Seed            uint64  `json:"seed"`
	Percentiles     string  `json:"percentiles"`
	LatencyExcludes string  `json:"latency_excludes"`
}

// WorkloadInfo describes one workload.
type WorkloadInfo struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	CacheBytes  int64  `json:"cache_bytes"`
	// UpstreamTTFBMs is the upstream's own TTFB p50 with one client, for
	// the cold-read comparison; 0 when not measured.
	UpstreamTTFBMs float64 `json:"upstream_ttfb_p50_ms"`
}

// Row is one participant on one workload phase. Ratios that do not apply
// are null: X-Cache ratios when the participant sent no X-Cache header,
// LRU ratios outside the Zipf trace, server CPU for the in-process
// upstream.
type Row struct {
	Workload           string             `json:"workload"`
	Participant        string             `json:"participant"`
	Run                int                `json:"run"`    // which play of the workload, from 1 (--repeat)
	Status             string             `json:"status"` // ok, failed, skipped
	Note               string             `json:"note"`
	Concurrency        int                `json:"concurrency"`
	Planned            int64              `json:"requests_planned"`
	Requests           int64              `json:"requests"`
	Errors             int64              `json:"errors"`
	Seconds            float64            `json:"seconds"`
	ReqPerSec          float64            `json:"req_per_sec"`
	MBPerSec           float64            `json:"mb_per_sec"` // 10^6 bytes of response bodies per second
	P50Ms              float64            `json:"p50_ms"`
	P90Ms              float64            `json:"p90_ms"`
	P99Ms              float64            `json:"p99_ms"`
	MaxMs              float64            `json:"max_ms"`
	TTFBP50Ms          float64            `json:"ttfb_p50_ms"`
	TTFBP99Ms          float64            `json:"ttfb_p99_ms"`
	TTFBVsUpstreamMs   *float64           `json:"ttfb_p50_vs_upstream_ms"` // cold reads: TTFB p50 minus the upstream's own
	ClientBytes        int64              `json:"client_bytes"`
	UpstreamRequests   int64              `json:"upstream_requests"`
	UpstreamGets       int64              `json:"upstream_gets"`
	UpstreamHeads      int64              `json:"upstream_heads"`
	UpstreamBytes      int64              `json:"upstream_bytes"`
	HitRatio           float64            `json:"hit_ratio"`      // 1 - upstream GETs+HEADs / client GETs+HEADs
	ByteHitRatio       float64            `json:"byte_hit_ratio"` // 1 - upstream bytes / client GET bytes
	XCacheHitRatio     *float64           `json:"xcache_hit_ratio"`
	XCacheByteHitRatio *float64           `json:"xcache_byte_hit_ratio"`
	LRUHitRatio        *float64           `json:"lru_hit_ratio"`
	LRUByteHitRatio    *float64           `json:"lru_byte_hit_ratio"`
	ServerCPUUsPerReq  *float64           `json:"server_cpu_us_per_req"`
	ClientCPUUsPerReq  float64            `json:"client_cpu_us_per_req"` // the benchmark process: load generator and in-process upstream
	EgressUSD          float64            `json:"egress_usd"`
	EgressUSDPerMReq   float64            `json:"egress_usd_per_million_requests"`
	Ops                map[string]OpStats `json:"ops"`

	cdf [][2]float64 // latency CDF for the chart
}

// OpStats are the figures of one operation within a row.
type OpStats struct {
	Requests int64   `json:"requests"`
	P50Ms    float64 `json:"p50_ms"`
	P99Ms    float64 `json:"p99_ms"`
}

// writeJSON writes r indented; encoding/json sorts map keys, so equal
// reports give identical bytes.
func writeJSON(w io.Writer, r *Report) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// groups returns the phase names of rows in first-seen order.
func groups(rows []Row) []string {
	var names []string
	seen := map[string]bool{}
	for _, r := range rows {
		if !seen[r.Workload] {
			seen[r.Workload] = true
			names = append(names, r.Workload)
		}
	}
	return names
}

// phaseRows returns the rows of one phase, by participant (in report
// order), then play.
func phaseRows(rows []Row, phase string) []Row {
	var out []Row
	for _, r := range rows {
		if r.Workload == phase {
			out = append(out, r)
		}
	}
	slices.SortStableFunc(out, func(a, b Row) int {
		return cmp.Or(cmp.Compare(slices.Index(participantNames, a.Participant), slices.Index(participantNames, b.Participant)),
			cmp.Compare(a.Run, b.Run))
	})
	return out
}

// writeMarkdown writes the report as one table per workload phase, with
// the machine, the settings and the notes.
func writeMarkdown(w io.Writer, r *Report) error {
	var b bytes.Buffer
	m := r.Machine
	fmt.Fprintf(&b, "# s3edge bench\n\n%s, %d CPUs (%s), %s, Go %s, %s.\n\n", m.Date, m.NProc, m.CPUModel, m.Kernel, m.GoVersion, m.MemTotal)
	fmt.Fprintf(&b, "Command: `%s`\n\n", m.Command)
	s := r.Settings
	fmt.Fprintf(&b, "Upstream: in-process gofakes3, first byte %gms, jitter %gms, bandwidth %s. Egress priced at $%g/GB. %s. %s. ",
		s.FirstByteMs, s.JitterMs, bandwidth(s.BytesPerSec), s.PricePerGB, s.Percentiles, s.LatencyExcludes)
	fmt.Fprintf(&b, "Client SigV4 signing (aws-sdk-go-v2 v4 signer, as the SDK signs): %.1f µs and %.0f allocations per request. ", m.SignNs/1000, m.SignAllocs)
	fmt.Fprintf(&b, "Participants: %s.\n\n", strings.Join(m.Participants, "; "))
	b.WriteString("Columns: hit = 1 − upstream reads / client reads (GET and HEAD); byte hit = 1 − upstream bytes / client GET bytes " +
		"(X-Cache's own figures in parentheses when the participant sends one); LRU = an exact LRU simulation of the same requests " +
		"at the same budget; CPU = the server's CPU time per request (all its processes; the load generator's own is in report.json); $/M req = upstream egress per million requests.\n\n")
	for _, wl := range r.Workloads {
		fmt.Fprintf(&b, "- **%s**: %s\n", wl.Name, wl.Description)
	}
	for _, g := range groups(r.Results) {
		fmt.Fprintf(&b, "\n## %s\n\n", g)
		b.WriteString("| participant | req/s | MB/s | p50 ms | p90 ms | p99 ms | TTFB p50 ms | upstream req | upstream MB | hit | byte hit | LRU byte hit | CPU µs/req | $/M req | errors |\n")
		b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		var notes []string
		for _, row := range phaseRows(r.Results, g) {
			name := row.Participant
			if r.Settings.Repeat > 1 {
				name = fmt.Sprintf("%s, play %d", name, row.Run)
			}
			if row.Status != statusOK {
				fmt.Fprintf(&b, "| %s | %s | | | | | | | | | | | | | |\n", name, row.Status)
				notes = append(notes, fmt.Sprintf("%s %s: %s", name, row.Status, strings.TrimSuffix(row.Note, "; ")))
				continue
			}
			fmt.Fprintf(&b, "| %s | %.0f | %.1f | %.2f | %.2f | %.2f | %.2f | %d | %.1f | %s | %s | %s | %s | %.3f | %d |\n",
				name, row.ReqPerSec, row.MBPerSec, row.P50Ms, row.P90Ms, row.P99Ms, row.TTFBP50Ms,
				row.UpstreamRequests, float64(row.UpstreamBytes)/1e6,
				ratioCell(row.HitRatio, row.XCacheHitRatio), ratioCell(row.ByteHitRatio, row.XCacheByteHitRatio),
				optPct(row.LRUByteHitRatio), optNum(row.ServerCPUUsPerReq), row.EgressUSDPerMReq, row.Errors)
			if row.Note != "" {
				notes = append(notes, name+": "+strings.TrimSuffix(row.Note, "; "))
			}
			if len(row.Ops) > 1 {
				var parts []string
				for _, op := range []string{"GET", "HEAD", "PUT"} {
					if o, ok := row.Ops[op]; ok {
						parts = append(parts, fmt.Sprintf("%s %d p50 %.2f p99 %.2f ms", op, o.Requests, o.P50Ms, o.P99Ms))
					}
				}
				notes = append(notes, name+" by operation: "+strings.Join(parts, ", "))
			}
		}
		if len(notes) > 0 {
			b.WriteString("\n")
			for _, n := range notes {
				fmt.Fprintf(&b, "- %s\n", n)
			}
		}
	}
	if len(r.Targets) > 0 {
		writeTargets(&b, r.Targets)
	}
	_, err := w.Write(b.Bytes())
	return err
}

func ratioCell(v float64, xcache *float64) string {
	s := fmt.Sprintf("%.1f%%", 100*v)
	if xcache != nil {
		s += fmt.Sprintf(" (%.1f%%)", 100**xcache)
	}
	return s
}

func optPct(v *float64) string {
	if v == nil {
		return "–"
	}
	return fmt.Sprintf("%.1f%%", 100**v)
}

func optNum(v *float64) string {
	if v == nil || math.IsNaN(*v) {
		return "–"
	}
	return fmt.Sprintf("%.0f", *v)
}

func bandwidth(bps int64) string {
	if bps == 0 {
		return "unlimited"
	}
	return sizeName(bps) + "/s per response"
}

// writeFiles writes report.md, report.json and the charts into dir.
func writeFiles(dir string, r *Report) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var md, js bytes.Buffer
	if err := writeMarkdown(&md, r); err != nil {
		return err
	}
	if err := writeJSON(&js, r); err != nil {
		return err
	}
	// Charts of an earlier run in the same directory would mislead.
	old, _ := filepath.Glob(filepath.Join(dir, "latency-*.svg"))
	for _, f := range old {
		_ = os.Remove(f)
	}
	files := map[string][]byte{"report.md": md.Bytes(), "report.json": js.Bytes()}
	// The charts draw the first play; report.md and report.json have all.
	var first []Row
	for _, row := range r.Results {
		if row.Run <= 1 {
			first = append(first, row)
		}
	}
	for i, g := range groups(first) {
		files[fmt.Sprintf("latency-%02d-%s.svg", i+1, strings.ReplaceAll(g, "/", "-"))] = latencyCDFSVG(g, first)
	}
	files["throughput.svg"] = throughputSVG(first)
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			return err
		}
	}
	return nil
}
