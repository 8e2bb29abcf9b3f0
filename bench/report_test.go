package bench

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata golden files")

func f64(v float64) *float64 { return &v }

// goldenReport is a fixed report: its JSON must not change unless the
// schema does on purpose (go test ./bench -run Golden -update).
func goldenReport() *Report {
	return &Report{
		Machine: Machine{Date: "2026-01-02T03:04:05Z", NProc: 2, CPUModel: "Test CPU", MemTotal: "8.0 GiB RAM",
			Kernel: "Linux 6.1", GoVersion: "go1.26", OSArch: "linux/amd64", Command: "s3edge bench --quick",
			Participants: []string{"direct (in-process gofakes3)", "s3edge v0"}, SignNs: 5500, SignAllocs: 39},
		Settings: Settings{Quick: true, FirstByteMs: 50, PricePerGB: 0.01, Seed: 1, Percentiles: "exact", LatencyExcludes: "signing"},
		Workloads: []WorkloadInfo{{Name: "zipf", Description: "Zipf", CacheBytes: 6 << 20},
			{Name: "coalesce", Description: "cold", CacheBytes: 64 << 20, UpstreamTTFBMs: 50.5}},
		Results: []Row{
			{Workload: "zipf", Participant: "direct", Status: statusOK, Concurrency: 32, Planned: 4000, Requests: 4000,
				Seconds: 6.5, ReqPerSec: 615.4, MBPerSec: 40.3, P50Ms: 51.3, P90Ms: 53, P99Ms: 73.2, MaxMs: 80,
				TTFBP50Ms: 51.2, TTFBP99Ms: 70, ClientBytes: 262144000, UpstreamRequests: 4000, UpstreamGets: 4000,
				UpstreamBytes: 262144000, LRUHitRatio: f64(0.572), LRUByteHitRatio: f64(0.572),
				EgressUSD: 0.00262144, EgressUSDPerMReq: 0.65536, Ops: map[string]OpStats{"GET": {4000, 51.3, 73.2}}},
			{Workload: "zipf", Participant: "s3edge", Status: statusOK, Concurrency: 32, Planned: 4000, Requests: 4000,
				HitRatio: 0.6, ByteHitRatio: 0.6, XCacheHitRatio: f64(0.61), XCacheByteHitRatio: f64(0.61),
				LRUHitRatio: f64(0.572), LRUByteHitRatio: f64(0.572), ServerCPUUsPerReq: f64(120),
				Ops: map[string]OpStats{"GET": {4000, 1, 50}}},
			{Workload: "coalesce/1MiB", Participant: "varnish", Status: statusFailed, Note: "start: varnishd exited",
				Concurrency: 50, Planned: 250, TTFBVsUpstreamMs: f64(3.5), Ops: map[string]OpStats{}},
		},
	}
}

func TestReportJSONGolden(t *testing.T) {
	var buf bytes.Buffer
	rep := goldenReport()
	rep.Targets = targets(rep.Results)
	if err := writeJSON(&buf, rep); err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "report.golden.json")
	if *update {
		if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Errorf("report.json changed; if on purpose, run go test ./bench -run Golden -update\ngot:\n%s", buf.String())
	}
	// Twice the same report, twice the same bytes (map order).
	var again bytes.Buffer
	rep = goldenReport()
	rep.Targets = targets(rep.Results)
	_ = writeJSON(&again, rep)
	if !bytes.Equal(buf.Bytes(), again.Bytes()) {
		t.Error("two encodings of one report differ")
	}
	// Every result has every field, null or not.
	var parsed struct{ Results []map[string]any }
	if err := json.Unmarshal(buf.Bytes(), &parsed); err != nil {
		t.Fatal(err)
	}
	for _, r := range parsed.Results {
		if len(r) != len(parsed.Results[0]) {
			t.Errorf("result %v has %d fields, the first %d", r["participant"], len(r), len(parsed.Results[0]))
		}
	}
}

func TestMarkdownAndCharts(t *testing.T) {
	rep := goldenReport()
	rep.Results[0].cdf = [][2]float64{{50, 0.1}, {51, 0.5}, {80, 1}}
	rep.Results[1].cdf = [][2]float64{{0.2, 0.2}, {1, 0.6}, {50, 1}}
	rep.Targets = targets(rep.Results)
	var md bytes.Buffer
	if err := writeMarkdown(&md, rep); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"## zipf", "## coalesce/1MiB", "| s3edge | 0 |", "60.0% (61.0%)", "| varnish | failed |",
		"varnish failed: start: varnishd exited", "57.2%",
		"| hit req/s vs nginx-static, 4KiB | ≥ 0.5x | – | – | not measured |", "| zipf byte hit ratio | ≥ 0.69 | 0.6 | 0.572 | no |"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("markdown lacks %q:\n%s", want, md.String())
		}
	}
	for name, svg := range map[string][]byte{
		"cdf": latencyCDFSVG("zipf", rep.Results), "empty cdf": latencyCDFSVG("coalesce/1MiB", rep.Results),
		"throughput": throughputSVG(rep.Results),
	} {
		d := xml.NewDecoder(bytes.NewReader(svg))
		for {
			_, err := d.Token()
			if err != nil {
				if err.Error() != "EOF" {
					t.Errorf("%s: not well-formed XML: %v", name, err)
				}
				break
			}
		}
	}
	dir := t.TempDir()
	if err := writeFiles(dir, rep); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"report.md", "report.json", "throughput.svg", "latency-01-zipf.svg", "latency-02-coalesce-1MiB.svg"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Error(err)
		}
	}
}

func TestTargets(t *testing.T) {
	rows := []Row{
		{Workload: "hot/4KiB", Participant: "s3edge", Status: statusOK, ReqPerSec: 20000, P99Ms: 1.5},
		{Workload: "hot/4KiB", Participant: "nginx-static", Status: statusOK, ReqPerSec: 40000, P99Ms: 1},
		{Workload: "hot/256KiB", Participant: "s3edge", Status: statusOK, ReqPerSec: 800, P99Ms: 3},
		{Workload: "hot/256KiB", Participant: "nginx-static", Status: statusOK, ReqPerSec: 1000},
		{Workload: "coalesce/1MiB", Participant: "s3edge", Status: statusOK, Concurrency: 50, Planned: 250, UpstreamGets: 5, TTFBVsUpstreamMs: f64(2)},
		{Workload: "paced/4KiB@5000", Participant: "s3edge", Status: statusOK, P99Ms: 1.2},
		{Workload: "paced/256KiB@5000", Participant: "s3edge", Status: statusOK, P99Ms: 2.5},
		{Workload: "paced/4KiB@5000", Participant: "s3edge", Status: statusOK, P99Ms: 1.2},
		{Workload: "paced/256KiB@5000", Participant: "s3edge", Status: statusOK, P99Ms: 2.5},
		{Workload: "zipf", Participant: "s3edge", Status: statusOK, ByteHitRatio: 0.65, LRUByteHitRatio: f64(0.638)},
	}
	got := map[string]Target{}
	for _, tg := range targets(rows) {
		got[tg.Name] = tg
	}
	for name, want := range map[string]bool{
		"hit req/s vs nginx-static, 4KiB":                      true,
		"hit req/s vs nginx-static, 256KiB":                    false,
		"hit req/s vs nginx-static, 4MiB":                      false, // no rows: not met
		"hit p99 latency ms saturated, 4KiB":                   true,
		"hit p99 latency ms saturated, 256KiB":                 false,
		"hit p99 latency ms at a fixed rate, 4KiB":             true,
		"hit p99 latency ms at a fixed rate, 256KiB":           false,
		"hit p99 latency ms at a fixed rate, 64KiB":            false, // no row
		"coalesce/1MiB: upstream GETs per cold key":            true,
		"coalesce/1MiB: TTFB p50 minus the upstream's own, ms": true,
		"zipf byte hit ratio":                                  false,
	} {
		tg, ok := got[name]
		if !ok {
			t.Errorf("no target %q", name)
			continue
		}
		if tg.Met != want {
			t.Errorf("%s: met = %v, want %v (value %v)", name, tg.Met, want, optNum3(tg.Value))
		}
	}
	if v := got["hit req/s vs nginx-static, 4KiB"].Value; v == nil || *v != 0.5 {
		t.Errorf("4KiB ratio = %v, want 0.5", optNum3(v))
	}
	if got["hit req/s vs nginx-static, 4MiB"].Value != nil {
		t.Error("a target without rows has a value")
	}
}
