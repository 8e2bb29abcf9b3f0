package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"time"

	"github.com/s3edge/s3edge/bench/lrusim"
)

// suite runs workloads on participants.
type suite struct {
	cfg   *Config
	dir   string    // scratch directory of the run
	log   io.Writer // progress lines
	parts []slot
	// remote is the upstream of --upstream; nil runs one in process per
	// workload.
	remote origin
}

// slot is a participant, or the reason it cannot run.
type slot struct {
	name string
	p    participant
	err  error
}

// runWorkload seeds a fresh shaped upstream with w's objects and plays w on
// every participant in turn, each on a fresh instance. Every participant
// yields one row per phase, failed or skipped ones included.
func (s *suite) runWorkload(ctx context.Context, w *workload) ([]Row, error) {
	up := s.remote
	if up == nil {
		// A fresh upstream per workload frees the last one's objects.
		local := newLocalOrigin(s.cfg)
		defer local.close()
		up = local
	}
	e := &env{cfg: s.cfg, dir: filepath.Join(s.dir, w.name), upURL: up.url()}
	if err := os.MkdirAll(e.dir, 0o755); err != nil {
		return nil, err
	}
	if !s.cfg.Keep {
		// Static files, caches and spools of a workload can take gigabytes.
		defer os.RemoveAll(e.dir)
	}
	needStatic := false
	for _, sl := range s.parts {
		needStatic = needStatic || (sl.name == "nginx-static" && sl.err == nil && w.static)
	}
	if needStatic {
		e.static = filepath.Join(e.dir, "static")
	}
	t0 := time.Now()
	if err := seed(ctx, up, e.static, s.cfg.Seed, w.objects); err != nil {
		return nil, err
	}
	fmt.Fprintf(s.log, "%s: %s\n%s: seeded %d objects in %v\n", w.name, w.desc, w.name, len(w.objects), time.Since(t0).Round(time.Millisecond))

	if len(w.probe) > 0 {
		t, _ := (&direct{}).start(ctx, e, w)
		c := newClient(1)
		res := run(ctx, c, t, w.probe, runOpts{concurrency: 1, maxTime: s.cfg.TraceTimeout})
		c.CloseIdleConnections()
		var ttfb []time.Duration
		for _, sm := range res.samples {
			if sm.done && !sm.failed {
				ttfb = append(ttfb, sm.ttfb)
			}
		}
		w.upstreamTTFB = ms(percentile(sortedCopy(ttfb), 50))
		fmt.Fprintf(s.log, "%s: the upstream's own TTFB (one client): p50 %.2f ms\n", w.name, w.upstreamTTFB)
	}

	var rows []Row
	plays := max(s.cfg.Repeat, 1)
	for run := 1; run <= plays; run++ {
		// Forward, then reverse (A B, B A, ...): a machine that drifts
		// during the run weighs on every participant alike.
		order := slices.Clone(s.parts)
		if run%2 == 0 {
			slices.Reverse(order)
		}
		pe := e
		if plays > 1 {
			// Each play starts from empty caches.
			pe = &env{cfg: e.cfg, dir: filepath.Join(e.dir, fmt.Sprintf("run%d", run)), upURL: e.upURL, static: e.static}
			if err := os.MkdirAll(pe.dir, 0o755); err != nil {
				return rows, err
			}
		}
		for _, sl := range order {
			if err := ctx.Err(); err != nil {
				return rows, err
			}
			played := s.play(ctx, sl, pe, up, w)
			for i := range played {
				played[i].Run = run
			}
			rows = append(rows, played...)
		}
		if plays > 1 && !s.cfg.Keep {
			os.RemoveAll(pe.dir)
		}
	}
	return rows, nil
}

// seed puts every object into the upstream, bypassing its shaping and
// counters, and writes it under static when static is not "".
func seed(ctx context.Context, up origin, static string, seedv uint64, objects []object) error {
	for _, o := range objects {
		data := content(seedv, o.key, o.size)
		if err := up.put(ctx, o.key, data); err != nil {
			return fmt.Errorf("seed %s: %w", o.key, err)
		}
		if static == "" {
			continue
		}
		file := filepath.Join(static, benchBucket, filepath.FromSlash(o.key))
		if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(file, data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// play runs every phase of w on one fresh instance of a participant.
func (s *suite) play(ctx context.Context, sl slot, e *env, up origin, w *workload) []Row {
	rows := make([]Row, len(w.phases))
	for i, ph := range w.phases {
		rows[i] = Row{Workload: ph.name, Participant: sl.name, Concurrency: ph.concurrency, Planned: int64(ph.requests())}
	}
	mark := func(from int, status, note string) []Row {
		for i := from; i < len(rows); i++ {
			rows[i].Status, rows[i].Note = status, note
		}
		fmt.Fprintf(s.log, "%s: %s %s: %s\n", w.name, sl.name, status, note)
		return rows
	}
	if sl.err != nil {
		return mark(0, statusSkipped, sl.err.Error())
	}
	p := sl.p
	defer p.stop()
	t, err := p.start(ctx, e, w)
	switch {
	case errors.Is(err, errNotApplicable):
		return mark(0, statusSkipped, err.Error())
	case err != nil:
		return mark(0, statusFailed, "start: "+err.Error())
	}
	maxConc := 1
	for _, ph := range w.phases {
		maxConc = max(maxConc, ph.concurrency)
	}
	c := newClient(maxConc)
	defer c.CloseIdleConnections()

	for i, ph := range w.phases {
		if err := ctx.Err(); err != nil {
			return mark(i, statusFailed, "interrupted")
		}
		if len(ph.warm) > 0 {
			wr := run(ctx, c, t, ph.warm, runOpts{concurrency: min(ph.concurrency, 8), maxTime: s.cfg.TraceTimeout})
			if wr.errors > 0 || wr.timedOut {
				if err := p.alive(); err != nil {
					return mark(i, statusFailed, "died while warming: "+err.Error())
				}
				rows[i].Note = fmt.Sprintf("warm-up: %d errors (first: %s); ", wr.errors, wr.firstErr)
			}
		}
		if err := up.reset(ctx); err != nil {
			return mark(i, statusFailed, "upstream: "+err.Error())
		}
		if ph.wrkKeys != nil {
			if stop := s.playWrk(ctx, p, t, e, up, w, ph, &rows[i]); stop {
				return mark(i+1, statusFailed, "died in an earlier phase")
			}
			continue
		}
		cpu0, hasCPU := p.cpu()
		self0 := selfCPU()
		var results []runResult
		for _, round := range ph.rounds {
			results = append(results, run(ctx, c, t, round, runOpts{concurrency: ph.concurrency, maxTime: ph.maxTime, rate: ph.rate, dead: p.alive}))
			if p.alive() != nil {
				break
			}
		}
		cpu1, _ := p.cpu()
		self1 := selfCPU()
		st, err := up.stats(ctx)
		if err != nil {
			return mark(i, statusFailed, "upstream: "+err.Error())
		}
		summarize(&rows[i], ph, results, st, w.cacheBytes, s.cfg.PricePerGB, p.caching())
		if w.upstreamTTFB > 0 && rows[i].Requests > 0 {
			d := rows[i].TTFBP50Ms - w.upstreamTTFB
			rows[i].TTFBVsUpstreamMs = &d
		}
		if n := rows[i].Requests; n > 0 {
			c := float64(self1-self0) / float64(time.Microsecond) / float64(n)
			rows[i].ClientCPUUsPerReq = c
			busy := self1 - self0
			if hasCPU {
				v := float64(cpu1-cpu0) / float64(time.Microsecond) / float64(n)
				rows[i].ServerCPUUsPerReq = &v
				busy += cpu1 - cpu0
			}
			// Client and server share the machine: when together they
			// use nearly every CPU, throughput is bounded by CPU cost.
			if wall := rows[i].Seconds; wall > 0 && busy.Seconds()/wall > 0.85*float64(runtime.NumCPU()) {
				rows[i].Note += fmt.Sprintf("CPU-bound: client and server used %.1f of %d CPUs; ", busy.Seconds()/wall, runtime.NumCPU())
			}
		}
		if err := p.alive(); err != nil {
			rows[i].Status = statusFailed
			rows[i].Note += "died: " + err.Error()
			return mark(i+1, statusFailed, "died in an earlier phase")
		}
		r := rows[i]
		fmt.Fprintf(s.log, "%s: %-12s %-14s %6d req %8.0f req/s %8.1f MB/s p50 %7.2f ms p99 %7.2f ms up %d GETs %s, %d errors\n",
			w.name, sl.name, ph.name, r.Requests, r.ReqPerSec, r.MBPerSec, r.P50Ms, r.P99Ms, r.UpstreamGets, sizeName(r.UpstreamBytes), r.Errors)
	}
	if n := p.note(); n != "" {
		for i := range rows {
			rows[i].Note += n + "; "
		}
	}
	return rows
}

// playWrk measures one wrk phase into r; it reports whether the
// participant died.
func (s *suite) playWrk(ctx context.Context, p participant, t target, e *env, up origin, w *workload, ph *phase, r *Row) (died bool) {
	cpu0, hasCPU := p.cpu()
	res, err := runWrk(ctx, t, e.dir, ph.name, ph.wrkKeys, ph.concurrency, ph.maxTime)
	cpu1, _ := p.cpu()
	switch {
	case errors.Is(err, errNoWrk):
		r.Status, r.Note = statusSkipped, err.Error()
		return false
	case err != nil:
		r.Status, r.Note = statusFailed, err.Error()
		return p.alive() != nil
	}
	st, err := up.stats(ctx)
	if err != nil {
		r.Status, r.Note = statusFailed, "upstream: "+err.Error()
		return false
	}
	summarizeWrk(r, res, ph.wrkSize, st, s.cfg.PricePerGB)
	r.ClientCPUUsPerReq = float64(res.cpu) / float64(time.Microsecond) / float64(r.Requests)
	busy := res.cpu
	if hasCPU {
		v := float64(cpu1-cpu0) / float64(time.Microsecond) / float64(r.Requests)
		r.ServerCPUUsPerReq = &v
		busy += cpu1 - cpu0
	}
	if busy.Seconds()/r.Seconds > 0.85*float64(runtime.NumCPU()) {
		r.Note += fmt.Sprintf("CPU-bound: wrk and server used %.1f of %d CPUs; ", busy.Seconds()/r.Seconds, runtime.NumCPU())
	}
	if err := p.alive(); err != nil {
		r.Status = statusFailed
		r.Note += "died: " + err.Error()
		return true
	}
	fmt.Fprintf(s.log, "%s: %-12s %-14s %6d req %8.0f req/s %8.1f MB/s p50 %7.2f ms p99 %7.2f ms up %d GETs %s, %d errors\n",
		w.name, p.name(), ph.name, r.Requests, r.ReqPerSec, r.MBPerSec, r.P50Ms, r.P99Ms, r.UpstreamGets, sizeName(r.UpstreamBytes), r.Errors)
	return false
}

// upstreamStats are the upstream's counters over one phase.
type upstreamStats struct {
	requests, gets, heads, bytes int64
}

// Row statuses.
const (
	statusOK      = "ok"
	statusFailed  = "failed"
	statusSkipped = "skipped"
)

// summarize fills r from the samples of a phase's rounds.
func summarize(r *Row, ph *phase, results []runResult, up upstreamStats, cacheBytes int64, price float64, caching bool) {
	r.Status = statusOK
	var lat, ttfb []time.Duration
	var getBytes, hitBytes, reads, hits, xcache int64
	var trace []lrusim.Access
	ops := map[string]*opAcc{}
	firstErr := ""
	for ri, res := range results {
		r.Seconds += res.wall.Seconds()
		r.Errors += res.errors
		if firstErr == "" {
			firstErr = res.firstErr
		}
		if res.timedOut && !ph.timed {
			r.Note += fmt.Sprintf("round %d stopped by its time bound; ", ri+1)
		}
		for _, sm := range res.samples {
			if !sm.done {
				continue
			}
			r.Requests++
			if sm.failed {
				continue
			}
			lat = append(lat, sm.lat)
			ttfb = append(ttfb, sm.ttfb)
			r.ClientBytes += sm.bytes
			acc := ops[sm.op.String()]
			if acc == nil {
				acc = &opAcc{}
				ops[sm.op.String()] = acc
			}
			acc.lat = append(acc.lat, sm.lat)
			if sm.cache != cacheNone {
				xcache++
			}
			if sm.op == opPut {
				continue
			}
			reads++
			// A coalesced read cost no upstream request of its own: it
			// counts as a hit, as nginx and Varnish count their lock
			// waiters, so that X-Cache and the upstream's counts agree.
			if sm.cache == cacheHit || sm.cache == cacheCoalesced {
				hits++
				hitBytes += sm.bytes
			}
			if sm.op == opGet {
				getBytes += sm.bytes
			}
		}
		if ph.lru {
			trace = appendTrace(trace, ph.rounds[ri], res.samples)
		}
	}
	if r.Errors > 0 {
		r.Note += fmt.Sprintf("%d errors, first: %s; ", r.Errors, firstErr)
		if r.Errors*2 > r.Requests {
			r.Status = statusFailed
		}
	}
	if r.Seconds > 0 {
		r.ReqPerSec = float64(r.Requests) / r.Seconds
		r.MBPerSec = float64(r.ClientBytes) / 1e6 / r.Seconds
	}
	sorted := sortedCopy(lat)
	r.P50Ms, r.P90Ms, r.P99Ms = ms(percentile(sorted, 50)), ms(percentile(sorted, 90)), ms(percentile(sorted, 99))
	if len(sorted) > 0 {
		r.MaxMs = ms(sorted[len(sorted)-1])
	}
	r.cdf = cdfPoints(sorted, 400)
	st := sortedCopy(ttfb)
	r.TTFBP50Ms, r.TTFBP99Ms = ms(percentile(st, 50)), ms(percentile(st, 99))
	r.Ops = map[string]OpStats{}
	for name, acc := range ops {
		s := sortedCopy(acc.lat)
		r.Ops[name] = OpStats{Requests: int64(len(s)), P50Ms: ms(percentile(s, 50)), P99Ms: ms(percentile(s, 99))}
	}

	r.UpstreamRequests, r.UpstreamGets, r.UpstreamHeads, r.UpstreamBytes = up.requests, up.gets, up.heads, up.bytes
	// Reads are GETs and HEADs on both sides: caches turn a HEAD miss
	// into an upstream GET, s3edge into an upstream HEAD.
	r.HitRatio = clamp01(1 - div(up.gets+up.heads, reads))
	r.ByteHitRatio = clamp01(1 - div(up.bytes, getBytes))
	if getBytes > 0 && float64(up.bytes) > 1.05*float64(getBytes) {
		r.Note += fmt.Sprintf("upstream sent %.1fx the bytes clients read; ", float64(up.bytes)/float64(getBytes))
	}
	if caching && xcache > 0 && reads > 0 {
		h, b := div(hits, reads), div(hitBytes, getBytes)
		r.XCacheHitRatio, r.XCacheByteHitRatio = &h, &b
		if d := h - r.HitRatio; d > 0.05 || d < -0.05 {
			r.Note += fmt.Sprintf("X-Cache says %.1f%% hits, the upstream's counts %.1f%%; ", 100*h, 100*r.HitRatio)
		}
	}
	if ph.lru {
		res := lrusim.Simulate(cacheBytes, trace)
		h, b := res.HitRatio(), res.ByteHitRatio()
		r.LRUHitRatio, r.LRUByteHitRatio = &h, &b
	}
	r.EgressUSD = float64(up.bytes) / 1e9 * price
	if r.Requests > 0 {
		r.EgressUSDPerMReq = r.EgressUSD / float64(r.Requests) * 1e6
	}
}

type opAcc struct{ lat []time.Duration }

// appendTrace appends the GETs that were played, in trace order, for the
// LRU simulation: the same requests the participant saw.
func appendTrace(trace []lrusim.Access, steps []step, samples []sample) []lrusim.Access {
	i := 0
	for _, s := range steps {
		for _, rq := range s {
			if samples[i].done && rq.op == opGet {
				trace = append(trace, lrusim.Access{Key: rq.key, Size: rq.want})
			}
			i++
		}
	}
	return trace
}

func div(a, b int64) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

func clamp01(x float64) float64 { return min(max(x, 0), 1) }
