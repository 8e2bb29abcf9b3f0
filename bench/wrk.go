package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// The wrk workload plays the hot reads with wrk (-t2 -c32), the load
// generator the disk cache issue's reference figures were measured with.
// wrk is written in C and costs far less CPU per request than the Go load
// generator, so on a 2-core machine its ratios weigh the servers' own cost
// more. It cannot sign each request: s3edge gets presigned URLs (valid for
// an hour), whose signature it verifies on every request as it does a
// header signature; the other participants get plain URLs.

// wrkWorkload: the hot objects, warmed twice by the Go client, then read
// round-robin by wrk for cfg.Duration per size.
func wrkWorkload(cfg *Config) *workload {
	hot := hotWorkload(cfg)
	w := &workload{name: "wrk", static: true, objects: hot.objects, cacheBytes: hot.cacheBytes,
		desc: fmt.Sprintf("the hot objects, warmed twice, then read round-robin by wrk -t2 -c%d for %v per size (s3edge: presigned URLs, verified per request)",
			cfg.Concurrency, cfg.Duration)}
	for _, hp := range hot.phases {
		p := &phase{name: "wrk/" + strings.TrimPrefix(hp.name, "hot/"), concurrency: cfg.Concurrency,
			maxTime: cfg.Duration, timed: true, warm: hp.warm}
		seen := map[string]bool{}
		for _, s := range hp.warm {
			if k := s[0].key; !seen[k] {
				seen[k] = true
				p.wrkKeys = append(p.wrkKeys, k)
			}
		}
		p.wrkSize = hp.warm[0][0].want
		w.phases = append(w.phases, p)
	}
	return w
}

// errNoWrk skips the wrk rows on a machine without wrk.
var errNoWrk = errors.New("wrk is not installed (apt-get install wrk)")

// wrkResult is what one wrk run reports.
type wrkResult struct {
	requests      int64
	seconds       float64
	bytes         int64 // response bytes, headers included
	p50, p90, p99 time.Duration
	max           time.Duration
	errors        int64 // non-2xx answers and socket errors
	cpu           time.Duration
	output        string
}

// runWrk plays keys round-robin against t with wrk for d.
func runWrk(ctx context.Context, t target, dir, name string, keys []string, conns int, d time.Duration) (wrkResult, error) {
	bin, err := exec.LookPath("wrk")
	if err != nil {
		return wrkResult{}, errNoWrk
	}
	now := time.Now()
	var paths []string
	for _, k := range keys {
		u := t.base + "/" + t.bucket + "/" + k
		if t.sign != nil {
			if u, err = t.sign.presign(u, time.Hour, now); err != nil {
				return wrkResult{}, err
			}
		}
		pu, err := url.Parse(u)
		if err != nil {
			return wrkResult{}, err
		}
		paths = append(paths, pu.RequestURI())
	}
	script := filepath.Join(dir, strings.ReplaceAll(name, "/", "-")+".lua")
	if err := os.WriteFile(script, wrkScript(paths), 0o644); err != nil {
		return wrkResult{}, err
	}
	cmd := exec.CommandContext(ctx, bin, "-t"+strconv.Itoa(min(2, conns)), "-c"+strconv.Itoa(conns), "-d"+wrkDuration(d), "--latency", "-s", script, t.base+"/")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return wrkResult{}, fmt.Errorf("wrk: %w: %s", err, strings.TrimSpace(out.String()))
	}
	res, err := parseWrk(out.String())
	if err != nil {
		return res, err
	}
	res.cpu = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	return res, nil
}

// wrkScript is a wrk Lua script that sends GETs of paths in turn.
func wrkScript(paths []string) []byte {
	var b bytes.Buffer
	b.WriteString("local paths = {\n")
	for _, p := range paths {
		// Go's quoting of an ASCII string is a valid Lua string literal.
		fmt.Fprintf(&b, "  %s,\n", strconv.QuoteToASCII(p))
	}
	b.WriteString("}\nlocal i = 0\nrequest = function()\n  i = i % #paths + 1\n  return wrk.format(\"GET\", paths[i])\nend\n")
	return b.Bytes()
}

// wrkDuration formats d in whole seconds (at least 1), as wrk takes it.
func wrkDuration(d time.Duration) string {
	return strconv.Itoa(max(int(d.Round(time.Second)/time.Second), 1)) + "s"
}

var (
	wrkTotalRe   = regexp.MustCompile(`(?m)^\s*(\d+) requests in ([\d.]+)(us|ms|s|m|h), ([\d.]+)([KMGT]?B) read`)
	wrkPctRe     = regexp.MustCompile(`(?m)^\s+(50|90|99)%\s+([\d.]+)(us|ms|s|m)\s*$`)
	wrkLatencyRe = regexp.MustCompile(`(?m)^\s+Latency\s+\S+\s+\S+\s+([\d.]+)(us|ms|s|m)`)
	wrkNon2xxRe  = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
	wrkSocketRe  = regexp.MustCompile(`Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
)

// parseWrk reads the summary wrk --latency prints.
func parseWrk(out string) (wrkResult, error) {
	r := wrkResult{output: out}
	m := wrkTotalRe.FindStringSubmatch(out)
	if m == nil {
		return r, fmt.Errorf("wrk: no summary in its output: %q", truncateOutput(out))
	}
	r.requests, _ = strconv.ParseInt(m[1], 10, 64)
	r.seconds = wrkDur(m[2], m[3]).Seconds()
	r.bytes = wrkBytes(m[4], m[5])
	for _, p := range wrkPctRe.FindAllStringSubmatch(out, -1) {
		d := wrkDur(p[2], p[3])
		switch p[1] {
		case "50":
			r.p50 = d
		case "90":
			r.p90 = d
		case "99":
			r.p99 = d
		}
	}
	if l := wrkLatencyRe.FindStringSubmatch(out); l != nil {
		r.max = wrkDur(l[1], l[2])
	}
	if n := wrkNon2xxRe.FindStringSubmatch(out); n != nil {
		v, _ := strconv.ParseInt(n[1], 10, 64)
		r.errors += v
	}
	if s := wrkSocketRe.FindStringSubmatch(out); s != nil {
		for _, f := range s[1:] {
			v, _ := strconv.ParseInt(f, 10, 64)
			r.errors += v
		}
	}
	if r.requests == 0 || r.seconds == 0 {
		return r, fmt.Errorf("wrk: made no requests: %q", truncateOutput(out))
	}
	return r, nil
}

func wrkDur(v, unit string) time.Duration {
	f, _ := strconv.ParseFloat(v, 64)
	scale := map[string]time.Duration{"us": time.Microsecond, "ms": time.Millisecond, "s": time.Second, "m": time.Minute, "h": time.Hour}[unit]
	return time.Duration(f * float64(scale))
}

func wrkBytes(v, unit string) int64 {
	f, _ := strconv.ParseFloat(v, 64)
	scale := map[string]float64{"B": 1, "KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30, "TB": 1 << 40}[unit]
	return int64(f * scale)
}

func truncateOutput(s string) string {
	if len(s) > 400 {
		return s[:400] + "…"
	}
	return s
}

// summarizeWrk fills r from a wrk run and the upstream's counters.
func summarizeWrk(r *Row, res wrkResult, size int64, up upstreamStats, price float64) {
	r.Status = statusOK
	r.Requests, r.Errors, r.Seconds = res.requests, res.errors, res.seconds
	if r.Errors > 0 {
		r.Note += fmt.Sprintf("%d errors (non-2xx answers or socket errors); ", r.Errors)
		if r.Errors*2 > r.Requests {
			r.Status = statusFailed
		}
	}
	ok := r.Requests - r.Errors
	r.ClientBytes = ok * size
	r.ReqPerSec = float64(r.Requests) / r.Seconds
	r.MBPerSec = float64(r.ClientBytes) / 1e6 / r.Seconds
	r.P50Ms, r.P90Ms, r.P99Ms, r.MaxMs = ms(res.p50), ms(res.p90), ms(res.p99), ms(res.max)
	r.UpstreamRequests, r.UpstreamGets, r.UpstreamHeads, r.UpstreamBytes = up.requests, up.gets, up.heads, up.bytes
	r.HitRatio = clamp01(1 - div(up.gets+up.heads, r.Requests))
	r.ByteHitRatio = clamp01(1 - div(up.bytes, r.ClientBytes))
	r.EgressUSD = float64(up.bytes) / 1e9 * price
	r.EgressUSDPerMReq = r.EgressUSD / float64(r.Requests) * 1e6
	r.Note += "wrk: latency percentiles as wrk reports them, no TTFB; "
}

// presign returns rawURL presigned for a GET valid for expires, as
// aws-sdk-go-v2's PresignClient makes it (UNSIGNED-PAYLOAD, no headers
// signed but Host).
func (s *signer) presign(rawURL string, expires time.Duration, now time.Time) (string, error) {
	req, err := http.NewRequest(http.MethodGet, rawURL, nil)
	if err != nil {
		return "", err
	}
	q := req.URL.Query()
	q.Set("X-Amz-Expires", strconv.Itoa(int(expires/time.Second)))
	req.URL.RawQuery = q.Encode()
	u, _, err := s.v4.PresignHTTP(context.Background(), s.creds, req, "UNSIGNED-PAYLOAD", "s3", s.region, now)
	return u, err
}
