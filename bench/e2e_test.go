package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// buildS3edge builds this tree's binary once per test binary run.
func buildS3edge(t *testing.T) string {
	t.Helper()
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(gobin); err != nil {
		t.Skipf("no go toolchain to build s3edge: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "s3edge")
	cmd := exec.Command(gobin, "build", "-o", bin, "../cmd/s3edge")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/s3edge: %v\n%s", err, out)
	}
	return bin
}

// runReport runs cfg's suite within a minute and returns the report it
// wrote to cfg.Out, and what it printed.
func runReport(t *testing.T, cfg *Config) (Report, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	if err := runSuite(ctx, cfg, "test", &stdout, &stderr); err != nil {
		t.Fatalf("runSuite: %v\n%s", err, stderr.String())
	}
	var rep Report
	b, err := os.ReadFile(filepath.Join(cfg.Out, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	return rep, stdout.String()
}

// quickArgs is a hot workload of two small sizes against a nearby upstream:
// a few seconds per participant.
func quickConfig(t *testing.T, args ...string) *Config {
	t.Helper()
	cfg, err := parseRunFlags(append([]string{"--workloads", "hot", "--duration", "300ms", "--first-byte", "5ms",
		"--work-dir", t.TempDir()}, args...), os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	cfg.HotSizes = []int64{4 << 10, 64 << 10}
	cfg.HotObjects = 4
	cfg.Concurrency = 8
	return cfg
}

// TestEndToEndQuickHot runs the hot workload against direct and the built
// s3edge (and nginx and Varnish when installed), checks every figure that
// must hold whatever the cache does, and the report files.
func TestEndToEndQuickHot(t *testing.T) {
	bin := buildS3edge(t)
	parts := []string{"direct", "s3edge"}
	for _, p := range []struct{ name, bin string }{{"nginx-static", "nginx"}, {"nginx-cache", "nginx"}, {"varnish", "varnishd"}} {
		if _, err := exec.LookPath(p.bin); err == nil {
			parts = append(parts, p.name)
		}
	}
	out := t.TempDir()
	cfg := quickConfig(t, "--participants", strings.Join(parts, ","), "--s3edge", bin, "--out", out)
	rep, stdout := runReport(t, cfg)
	if want := 2 * len(parts); len(rep.Results) != want {
		t.Fatalf("%d rows, want %d (2 sizes × %d participants)", len(rep.Results), want, len(parts))
	}
	for _, r := range rep.Results {
		name := r.Workload + " " + r.Participant
		if r.Status != statusOK || r.Errors != 0 || r.Requests == 0 {
			t.Errorf("%s: status %s, %d errors, %d requests: %s", name, r.Status, r.Errors, r.Requests, r.Note)
			continue
		}
		if r.P50Ms <= 0 || r.P50Ms > r.P99Ms || r.TTFBP50Ms <= 0 || r.ReqPerSec <= 0 {
			t.Errorf("%s: implausible p50 %v p99 %v ttfb %v req/s %v", name, r.P50Ms, r.P99Ms, r.TTFBP50Ms, r.ReqPerSec)
		}
		switch r.Participant {
		case "direct":
			// Every read reached the upstream: the counts cross-check.
			if r.UpstreamGets != r.Requests || r.HitRatio != 0 || r.P50Ms < 5 {
				t.Errorf("%s: %d upstream GETs for %d requests, hit %v, p50 %v", name, r.UpstreamGets, r.Requests, r.HitRatio, r.P50Ms)
			}
		case "s3edge":
			if r.ServerCPUUsPerReq == nil {
				t.Errorf("%s: no server CPU figure", name)
			}
			// Until the cache lands s3edge passes through; after, a warm
			// hot set must be all hits, by both measures.
			if r.XCacheHitRatio != nil && (*r.XCacheHitRatio < 0.99 || r.HitRatio < 0.99) {
				t.Errorf("%s: warm hot set: hit %v, X-Cache %v", name, r.HitRatio, *r.XCacheHitRatio)
			}
		case "nginx-cache", "varnish", "nginx-static":
			if r.UpstreamGets != 0 {
				t.Errorf("%s: %d upstream GETs on a warm hot set", name, r.UpstreamGets)
			}
		}
	}
	for _, f := range []string{"report.md", "throughput.svg", "latency-01-hot-4KiB.svg"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Error(err)
		}
	}
	if !strings.Contains(stdout, "## hot/64KiB") {
		t.Errorf("stdout lacks the tables:\n%s", stdout)
	}
}

// TestRepeatPlaysFreshInstancesInAlternatingOrder: with --repeat, each play
// starts every participant afresh (a cold key is cold again: the upstream
// sees its GET in every play), participants alternate their order, and the
// targets are taken over the plays.
func TestRepeatPlaysFreshInstancesInAlternatingOrder(t *testing.T) {
	bin := buildS3edge(t)
	out, work := t.TempDir(), t.TempDir()
	cfg, err := parseRunFlags([]string{"--workloads", "coalesce", "--coalesce-rounds", "2", "--coalesce-clients", "4",
		"--coalesce-size", "64KiB", "--first-byte", "5ms", "--repeat", "2", "--participants", "direct,s3edge",
		"--s3edge", bin, "--out", out, "--work-dir", work, "--keep"}, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	rep, stdout := runReport(t, cfg)
	var order []string
	for _, r := range rep.Results {
		order = append(order, fmt.Sprintf("%s/%d", r.Participant, r.Run))
		if r.Status != statusOK || r.Errors != 0 {
			t.Errorf("%s play %d: status %s, %d errors: %s", r.Participant, r.Run, r.Status, r.Errors, r.Note)
		}
		if r.Participant == "s3edge" && r.UpstreamGets != 2 {
			t.Errorf("s3edge play %d: %d upstream GETs for 2 cold keys, want 2 (a cache left from another play?)", r.Run, r.UpstreamGets)
		}
	}
	// A play's cache could outlive it: entries stored in the first would be
	// hits in the second, if its fills commit before the stop.
	if dirs, _ := filepath.Glob(filepath.Join(work, "s3edge-bench-*", "coalesce", "run*", "s3edge", "data")); len(dirs) != 2 {
		t.Errorf("s3edge data directories %q, want one per play", dirs)
	}
	if got, want := strings.Join(order, " "), "direct/1 s3edge/1 s3edge/2 direct/2"; got != want {
		t.Errorf("plays ran %s, want %s", got, want)
	}
	found := false
	for _, tg := range rep.Targets {
		if tg.Name == "coalesce/64KiB: upstream GETs per cold key" {
			found = true
			if tg.Runs != 2 || !tg.Met {
				t.Errorf("%s: %d plays, met %v", tg.Name, tg.Runs, tg.Met)
			}
		}
	}
	if !found {
		t.Errorf("no coalesce target in %+v", rep.Targets)
	}
	if !strings.Contains(stdout, "| s3edge, play 2 |") || !strings.Contains(stdout, "(median of 2 plays)") {
		t.Errorf("report does not show the plays:\n%s", stdout)
	}
}

// TestFailedParticipantIsReported: a participant that cannot start is a
// failed row with the reason, and the others still run.
func TestFailedParticipantIsReported(t *testing.T) {
	cfg := quickConfig(t, "--participants", "direct,s3edge", "--s3edge", "/bin/false", "--duration", "100ms")
	cfg.HotSizes = cfg.HotSizes[:1]
	var stdout, stderr bytes.Buffer
	if err := runSuite(t.Context(), cfg, "test", &stdout, &stderr); err != nil {
		t.Fatalf("runSuite: %v", err)
	}
	md := stdout.String()
	if !strings.Contains(md, "| s3edge | failed |") || !strings.Contains(md, "s3edge failed: start:") {
		t.Errorf("no failed s3edge row:\n%s", md)
	}
	if !strings.Contains(md, "| direct | ") || strings.Contains(md, "| direct | failed") {
		t.Errorf("direct did not run:\n%s", md)
	}
}

func TestBadInput(t *testing.T) {
	var usage *UsageError
	for _, args := range [][]string{
		{"--workloads", "hot,nope"},
		{"--participants", "direct,apache"},
		{"--no-such-flag"},
		{"extra"},
		{"--cache-fraction", "0"},
		{"--video-size", "1KiB"},
		{"--coalesce-size", "0"},
		{"--coalesce-size", "big"},
		{"--coalesce-rounds", "-1"},
		{"--repeat", "0"},
		{"--repeat", "21"},
		{"upstream", "--fail", "sometimes"},
	} {
		err := Main(t.Context(), args, &bytes.Buffer{}, &bytes.Buffer{})
		if !errors.As(err, &usage) {
			t.Errorf("Main(%q) = %v, want a UsageError", args, err)
		}
	}

	// A named participant whose binary is missing fails before anything starts.
	cfg := quickConfig(t, "--participants", "direct,varnish")
	cfg.varnishd = ""
	err := runSuite(t.Context(), cfg, "test", &bytes.Buffer{}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "varnishd not found") {
		t.Errorf("missing varnishd: %v", err)
	}

	// An unreachable upstream is an error within seconds, not a hang.
	cfg = quickConfig(t, "--participants", "direct", "--upstream", "http://127.0.0.1:1")
	t0 := time.Now()
	err = runSuite(t.Context(), cfg, "test", &bytes.Buffer{}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "unreachable") || time.Since(t0) > 10*time.Second {
		t.Errorf("unreachable upstream: %v after %v", err, time.Since(t0))
	}
}

// dying is a participant whose server dies after a number of requests.
type dying struct {
	after int64
	srv   *httptest.Server
	n     atomic.Int64
	dead  atomic.Bool
}

func (*dying) name() string               { return "dying" }
func (*dying) caching() bool              { return false }
func (*dying) cpu() (time.Duration, bool) { return 0, false }
func (*dying) note() string               { return "" }
func (d *dying) stop()                    { d.srv.Close() }
func (d *dying) alive() error {
	if d.dead.Load() {
		return errors.New("dying exited (signal: killed)")
	}
	return nil
}
func (d *dying) start(context.Context, *env, *workload) (target, error) {
	d.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d.n.Add(1) == d.after {
			d.dead.Store(true)
			d.srv.Listener.Close()
			d.srv.CloseClientConnections()
			return
		}
		w.Write(make([]byte, 4096))
	}))
	return target{base: d.srv.URL, bucket: benchBucket}, nil
}

// TestParticipantDyingMidRun: a participant that dies in the middle of a
// phase is a failed row that says so, its later phases too, and the run
// neither hangs nor grinds through the rest of its trace.
func TestParticipantDyingMidRun(t *testing.T) {
	cfg := quickConfig(t, "--participants", "direct", "--duration", "5s", "--first-byte", "0s")
	s := &suite{cfg: cfg, dir: t.TempDir(), log: io.Discard, parts: []slot{{name: "dying", p: &dying{after: 300}}}}
	w := hotWorkload(cfg)
	t0 := time.Now()
	rows, err := s.runWorkload(t.Context(), w)
	if err != nil {
		t.Fatal(err)
	}
	if el := time.Since(t0); el > 4*time.Second {
		t.Errorf("took %v: the run went on after the death", el)
	}
	if len(rows) != 2 {
		t.Fatalf("%d rows, want 2", len(rows))
	}
	for _, r := range rows {
		if r.Status != statusFailed || !strings.Contains(r.Note, "died") {
			t.Errorf("%s: status %s, note %q; want failed, died", r.Workload, r.Status, r.Note)
		}
	}
}
