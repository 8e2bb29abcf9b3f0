package bench

import (
	"os/exec"
	"strings"
	"testing"
	"time"
)

// A wrk 4.1 summary, as wrk --latency prints it.
const wrkSample = `Running 4s test @ http://127.0.0.1:19400/
  2 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   754.32us    1.02ms  21.40ms   91.12%
    Req/Sec    22.60k     1.31k   25.41k    71.25%
  Latency Distribution
     50%  435.00us
     75%  778.00us
     90%    1.62ms
     99%    5.27ms
  180057 requests in 4.00s, 773.65MB read
  Non-2xx or 3xx responses: 3
  Socket errors: connect 0, read 2, write 0, timeout 1
Requests/sec:  45008.12
Transfer/sec:    193.39MB
`

func TestParseWrk(t *testing.T) {
	r, err := parseWrk(wrkSample)
	if err != nil {
		t.Fatal(err)
	}
	if r.requests != 180057 || r.seconds != 4 || r.bytes < 811_000_000 || r.bytes > 811_300_000 {
		t.Errorf("requests %d in %vs, %d bytes", r.requests, r.seconds, r.bytes)
	}
	if r.p50 != 435*time.Microsecond || r.p90 != 1620*time.Microsecond || r.p99 != 5270*time.Microsecond || r.max != 21400*time.Microsecond {
		t.Errorf("p50 %v p90 %v p99 %v max %v", r.p50, r.p90, r.p99, r.max)
	}
	if r.errors != 6 {
		t.Errorf("errors %d, want 3 non-2xx + 3 socket", r.errors)
	}
	for _, bad := range []string{"", "unable to connect to 127.0.0.1:1 Connection refused\n", strings.Replace(wrkSample, "180057 requests", "0 requests", 1)} {
		if _, err := parseWrk(bad); err == nil {
			t.Errorf("parseWrk(%q) accepted it", truncateOutput(bad))
		}
	}
}

// TestEndToEndQuickWrk plays the wrk workload on s3edge (presigned URLs,
// so every request's signature is verified) and nginx-static: every
// request answered, all of s3edge's hits, server CPU reported.
func TestEndToEndQuickWrk(t *testing.T) {
	if _, err := exec.LookPath("wrk"); err != nil {
		t.Skip("wrk is not installed")
	}
	bin := buildS3edge(t)
	parts := []string{"s3edge"}
	if _, err := exec.LookPath("nginx"); err == nil {
		parts = append(parts, "nginx-static")
	}
	out := t.TempDir()
	cfg := quickConfig(t, "--workloads", "wrk", "--participants", strings.Join(parts, ","), "--s3edge", bin, "--duration", "1s", "--out", out)
	rep, stdout := runReport(t, cfg)
	if !strings.Contains(stdout, "## wrk/64KiB") {
		t.Errorf("stdout lacks the wrk tables:\n%s", stdout)
	}
	if len(rep.Results) != 2*len(parts) {
		t.Fatalf("%d rows, want %d (2 sizes × %d participants)", len(rep.Results), 2*len(parts), len(parts))
	}
	for _, r := range rep.Results {
		name := r.Workload + " " + r.Participant
		if r.Status != statusOK || r.Errors != 0 || r.Requests < 100 || r.ReqPerSec <= 0 || r.P99Ms <= 0 {
			t.Errorf("%s: status %s, %d errors, %d requests, %v req/s, p99 %v: %s", name, r.Status, r.Errors, r.Requests, r.ReqPerSec, r.P99Ms, r.Note)
		}
		if r.UpstreamGets != 0 || r.HitRatio != 1 {
			t.Errorf("%s: %d upstream GETs on a warm hot set", name, r.UpstreamGets)
		}
		if r.ServerCPUUsPerReq == nil || r.ClientCPUUsPerReq <= 0 {
			t.Errorf("%s: CPU figures missing", name)
		}
	}
}

// TestEndToEndQuickPaced plays the paced workload on s3edge: every planned
// request sent at the rate, all hits; direct sits it out with its reason.
func TestEndToEndQuickPaced(t *testing.T) {
	bin := buildS3edge(t)
	out := t.TempDir()
	cfg := quickConfig(t, "--workloads", "paced", "--participants", "direct,s3edge", "--s3edge", bin,
		"--duration", "1s", "--paced-rate", "400", "--out", out)
	rep, stdout := runReport(t, cfg)
	for _, r := range rep.Results {
		name := r.Workload + " " + r.Participant
		if r.Participant == "direct" {
			if r.Status != statusSkipped || !strings.Contains(r.Note, "cannot keep up") {
				t.Errorf("%s: status %s (%s), want skipped with its reason", name, r.Status, r.Note)
			}
			continue
		}
		// 400/s for 1 s: 400 requests, sent over about a second.
		if r.Status != statusOK || r.Requests != 400 || r.Errors != 0 || r.Seconds < 0.95 || r.HitRatio != 1 || r.P99Ms <= 0 {
			t.Errorf("%s: status %s, %d requests in %.2fs, %d errors, hit %v, p99 %v: %s",
				name, r.Status, r.Requests, r.Seconds, r.Errors, r.HitRatio, r.P99Ms, r.Note)
		}
	}
	if !strings.Contains(stdout, "## paced/4KiB@400") {
		t.Errorf("no paced/4KiB@400 table:\n%s", stdout)
	}
}
