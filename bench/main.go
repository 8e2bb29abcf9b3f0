package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"
	"time"
)

// Main runs "s3edge bench": the side-by-side suite (the default, or "run"),
// or "upstream", the shaped S3 server as its own process. args exclude
// "bench". Progress goes to stderr, the report to stdout. A bad command
// line returns a *UsageError; -h returns flag.ErrHelp.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "upstream":
			return upstreamMain(ctx, args[1:], stdout, stderr)
		case "run":
			args = args[1:]
		}
	}
	cfg, err := parseRunFlags(args, stderr)
	if err != nil {
		return err
	}
	return runSuite(ctx, cfg, "s3edge bench "+quoteArgs(args), stdout, stderr)
}

// runSuite builds the participants and the workloads, plays them, prints
// the report and writes it to cfg.Out.
// loadgenGCPercent is the benchmark process's GOGC.
const loadgenGCPercent = 800

func runSuite(ctx context.Context, cfg *Config, cmdline string, stdout, stderr io.Writer) error {
	start := time.Now()
	// The load generator's own collections showed in the measured tails
	// (p99 at a fixed rate fell from ~5 to ~2 ms without them): collect
	// less often, unless GOGC says otherwise. Participants are other
	// processes and keep their defaults.
	if os.Getenv("GOGC") == "" {
		defer debug.SetGCPercent(debug.SetGCPercent(loadgenGCPercent))
	}
	s := &suite{cfg: cfg, log: stderr}
	m := machineInfo(cmdline)
	for _, name := range cfg.Participants {
		p, err := newParticipant(name, cfg)
		if err != nil && cfg.explicit {
			return fmt.Errorf("participant %s: %w", name, err)
		}
		if err != nil {
			fmt.Fprintf(stderr, "bench: skipping %s: %v\n", name, err)
		}
		s.parts = append(s.parts, slot{name: name, p: p, err: err})
		m.Participants = append(m.Participants, name+" "+participantVersion(name, cfg, p, err))
	}
	// Build every workload first, so that a bad setting fails before
	// anything starts.
	var wls []*workload
	for _, name := range cfg.Workloads {
		w, err := buildWorkload(name, cfg)
		if err != nil {
			return err
		}
		wls = append(wls, w)
	}
	if cfg.remoteUpstream != "" {
		o, err := dialRemoteOrigin(ctx, cfg.remoteUpstream)
		if err != nil {
			return err
		}
		s.remote = o
	}
	dir, err := os.MkdirTemp(cfg.WorkDir, "s3edge-bench-")
	if err != nil {
		return err
	}
	s.dir = dir
	if cfg.Keep {
		fmt.Fprintf(stderr, "bench: scratch directory %s is kept\n", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	m.SignNs, m.SignAllocs = signCost(20000)

	rep := &Report{Machine: m, Settings: Settings{
		Quick: cfg.Quick, Repeat: cfg.Repeat, FirstByteMs: ms(cfg.FirstByte), JitterMs: ms(cfg.Jitter), BytesPerSec: cfg.BytesPerSec,
		PricePerGB: cfg.PricePerGB, Seed: cfg.Seed,
		Percentiles:     "Percentiles are exact (every latency kept and sorted, nearest rank)",
		LatencyExcludes: "Latency runs from sending the signed request to the last body byte; TTFB to the first response byte",
	}}
	if cfg.remoteUpstream != "" {
		rep.Settings.Percentiles += "; upstream: " + cfg.remoteUpstream + " (its own shaping)"
	}
	var runErr error
	for _, w := range wls {
		rows, err := s.runWorkload(ctx, w)
		rep.Workloads = append(rep.Workloads, WorkloadInfo{Name: w.name, Description: w.desc, CacheBytes: w.cacheBytes,
			UpstreamTTFBMs: w.upstreamTTFB})
		rep.Results = append(rep.Results, rows...)
		if err != nil {
			runErr = fmt.Errorf("workload %s: %w", w.name, err)
			if errors.Is(err, context.Canceled) {
				runErr = fmt.Errorf("interrupted: %w", err)
			}
			break
		}
	}
	// An interrupted run still reports what it measured.
	annotate(rep.Results)
	rep.Targets = targets(rep.Results)
	if err := writeMarkdown(stdout, rep); err != nil {
		return errors.Join(runErr, err)
	}
	if cfg.Out != "" {
		if err := writeFiles(cfg.Out, rep); err != nil {
			return errors.Join(runErr, fmt.Errorf("writing the report: %w", err))
		}
		fmt.Fprintf(stderr, "bench: report written to %s\n", cfg.Out)
	}
	fmt.Fprintf(stderr, "bench: done in %v\n", time.Since(start).Round(100*time.Millisecond))
	return runErr
}

// annotate adds the comparisons that span rows: for cold reads, the
// upstream GETs per cold key and the TTFB beside the upstream's own.
func annotate(rows []Row) {
	for i := range rows {
		r := &rows[i]
		if !strings.HasPrefix(r.Workload, "coalesce") || r.Status != statusOK {
			continue
		}
		keys := r.Planned / int64(max(r.Concurrency, 1))
		r.Note += fmt.Sprintf("%.1f upstream GETs per cold key", float64(r.UpstreamGets)/float64(max(keys, 1)))
		if d := r.TTFBVsUpstreamMs; d != nil {
			r.Note += fmt.Sprintf(", TTFB p50 %+.1f ms vs the upstream's own (one client)", *d)
		}
		r.Note += "; "
	}
}

func participantVersion(name string, cfg *Config, p participant, err error) string {
	if err != nil {
		return "(unavailable)"
	}
	switch name {
	case "s3edge":
		return strings.TrimPrefix(version(p.(*s3edge).bin, "version"), "s3edge ")
	case "nginx-static", "nginx-cache":
		return strings.TrimPrefix(version(cfg.nginx, "-v"), "nginx version: ")
	case "varnish":
		return strings.TrimPrefix(version(cfg.varnishd, "-V"), "varnishd ")
	}
	return "(in-process gofakes3)"
}

// quoteArgs prints args as a shell would need them.
func quoteArgs(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		if a == "" || strings.ContainsAny(a, " \t'\"$\\*?") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		q[i] = a
	}
	return strings.TrimSpace(strings.Join(q, " "))
}
