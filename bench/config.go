package bench

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// Config is one benchmark run. defaultConfig gives the full suite;
// --quick scales every workload down.
type Config struct {
	Workloads    []string
	Participants []string
	// explicit participants were named by the user: a missing binary is
	// then an error, not a skipped row.
	explicit bool

	Out        string  // report directory; "" prints only
	Repeat     int     // plays of each workload, participants in alternating order
	S3edgeBin  string  // "" = this executable
	PricePerGB float64 // egress price for the cost column
	Seed       uint64

	// The shaped upstream.
	FirstByte   time.Duration
	Jitter      time.Duration
	BytesPerSec int64

	Concurrency  int           // hot, zipf and video clients
	Duration     time.Duration // per hot size
	TraceTimeout time.Duration // bound on each trace replay (zipf, synapse, video, coalesce round)

	HotSizes    []int64
	HotObjects  int
	HotRequests int
	PacedRate   float64 // requests/s of the paced workload

	CoalesceClients, CoalesceRounds int
	CoalesceSize                    int64

	ZipfObjects, ZipfRequests int
	ZipfSize                  int64
	ZipfS, CacheFraction      float64

	SynapseMedia, SynapseSteps, SynapseClients int

	VideoObjects, VideoRequests int
	VideoSize, VideoRange       int64

	WorkDir string // parent of the scratch directory; "" = os.TempDir

	// remoteUpstream is the URL of an "s3edge bench upstream"; "" runs
	// one in process.
	remoteUpstream string
	Keep           bool // keep the scratch directory
	Quick          bool

	nginx, varnishd string // binaries found on PATH
}

func defaultConfig() *Config {
	return &Config{
		Workloads: workloadNames, Participants: participantNames,
		PricePerGB: 0.01, Seed: 1, Repeat: 1,
		FirstByte:   50 * time.Millisecond,
		Concurrency: 32, Duration: 4 * time.Second, TraceTimeout: 150 * time.Second,
		HotSizes:   []int64{4 << 10, 64 << 10, 256 << 10, 1 << 20, 4 << 20},
		HotObjects: 8, HotRequests: 500_000, PacedRate: 5000,
		// 20 bursts: the median time to first byte of 5 swung by ±3 ms
		// between runs.
		CoalesceClients: 50, CoalesceRounds: 20, CoalesceSize: 1 << 20,
		ZipfObjects: 5000, ZipfRequests: 20000, ZipfSize: 64 << 10, ZipfS: 1.0, CacheFraction: 0.10,
		SynapseMedia: 1000, SynapseSteps: 1500, SynapseClients: 16,
		VideoObjects: 4, VideoSize: 200 << 20, VideoRequests: 1000, VideoRange: 1 << 20,
	}
}

// applyQuick scales the suite to run in well under two minutes.
func (c *Config) applyQuick() {
	c.Duration = time.Second
	c.HotSizes = []int64{4 << 10, 256 << 10, 4 << 20} // the sizes the cache issue sets targets for
	c.TraceTimeout = 30 * time.Second
	c.HotRequests = 100_000
	c.CoalesceRounds = 5
	c.ZipfObjects, c.ZipfRequests = 1000, 4000
	c.SynapseMedia, c.SynapseSteps = 200, 300
	c.VideoObjects, c.VideoSize, c.VideoRequests = 2, 32<<20, 300
}

// UsageError is a mistake on the command line (unknown flag, workload or
// participant): the caller should exit with status 2.
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return e.Msg }

func usageErrorf(format string, args ...any) error {
	return &UsageError{fmt.Sprintf(format, args...)}
}

// parseFlagSet parses args, refusing positional arguments: a mistake is a
// *UsageError, -h is flag.ErrHelp.
func parseFlagSet(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageErrorf("%v", err)
	}
	if fs.NArg() > 0 {
		return usageErrorf("unexpected argument %q", fs.Arg(0))
	}
	return nil
}

// parseRunFlags parses the flags of "s3edge bench [run]".
func parseRunFlags(args []string, stderr io.Writer) (*Config, error) {
	c := defaultConfig()
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	workloads := fs.String("workloads", strings.Join(workloadNames, ","), "comma-separated workloads: "+strings.Join(workloadNames, ", "))
	participants := fs.String("participants", "", "comma-separated participants: "+strings.Join(participantNames, ", ")+
		"\n(default: all; nginx and varnish are skipped when not installed, an error when named here)")
	fs.BoolVar(&c.Quick, "quick", false, "scaled-down suite (under 2 minutes)")
	fs.IntVar(&c.Repeat, "repeat", 1, "play each workload this many times, participants in forward then reverse order;\nthe targets are medians over the plays (a shared machine drifts between participants)")
	fs.StringVar(&c.Out, "out", "", "write report.md, report.json and SVG charts into this directory")
	fs.StringVar(&c.S3edgeBin, "s3edge", "", "s3edge binary to benchmark (default: this executable)")
	fs.Float64Var(&c.PricePerGB, "price", c.PricePerGB, "egress price in $/GB for the cost column (B2-like 0.01, AWS 0.09)")
	fs.Uint64Var(&c.Seed, "seed", c.Seed, "seed of every trace and object content")
	fs.DurationVar(&c.FirstByte, "first-byte", c.FirstByte, "upstream delay before the first byte")
	fs.DurationVar(&c.Jitter, "jitter", 0, "upstream random extra delay, uniform in [0, jitter)")
	bw := fs.String("bandwidth", "0", "upstream per-response bandwidth cap, bytes/s with optional KiB/MiB/GiB suffix; 0 = unlimited")
	fs.IntVar(&c.Concurrency, "concurrency", c.Concurrency, "clients for hot, zipf and video")
	hotSizes := fs.String("hot-sizes", "", "comma-separated object sizes of the hot and wrk workloads (default 4KiB,64KiB,256KiB,1MiB,4MiB)")
	fs.Float64Var(&c.PacedRate, "paced-rate", c.PacedRate, "requests/s the paced workload offers (open loop, below every participant's capacity)")
	duration := fs.Duration("duration", 0, "measured time per hot object size (default 4s, 1s with --quick)")
	traceTimeout := fs.Duration("trace-timeout", 0, "bound on each trace replay (default 150s, 30s with --quick)")
	fs.IntVar(&c.CoalesceClients, "coalesce-clients", c.CoalesceClients, "clients asking for one cold object at once")
	coalesceRounds := fs.Int("coalesce-rounds", 0, "coalesce rounds, each on a new cold object (default 20, 5 with --quick)")
	coalesceSize := fs.String("coalesce-size", "", "size of the coalesce objects (default 1MiB)")
	zipfObjects := fs.Int("zipf-objects", 0, "Zipf population (default 5000, 1000 with --quick)")
	zipfRequests := fs.Int("zipf-requests", 0, "Zipf trace length (default 20000, 4000 with --quick)")
	fs.Float64Var(&c.CacheFraction, "cache-fraction", c.CacheFraction, "Zipf cache budget as a fraction of the working set")
	videoObjects := fs.Int("video-objects", 0, "video objects (default 4, 2 with --quick)")
	videoSize := fs.String("video-size", "", "video object size (default 200MiB, 32MiB with --quick)")
	videoRequests := fs.Int("video-requests", 0, "video range requests (default 1000, 300 with --quick)")
	fs.StringVar(&c.remoteUpstream, "upstream", "", "use this 's3edge bench upstream' (http://host:port) instead of one in process;\nits own shaping applies and the --first-byte, --jitter and --bandwidth flags do not")
	fs.StringVar(&c.WorkDir, "work-dir", "", "parent of the scratch directory (default: the system temp dir)")
	fs.BoolVar(&c.Keep, "keep", false, "keep the scratch directory (configs, logs, caches)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: s3edge bench [flags]\n       s3edge bench upstream [flags]\n\n"+
			"Runs every participant side by side against a shaped in-process S3 upstream\n"+
			"and reports throughput, latency, hit ratios and egress. Flags:\n")
		fs.PrintDefaults()
	}
	if err := parseFlagSet(fs, args); err != nil {
		return nil, err
	}
	if c.Quick {
		c.applyQuick()
	}
	setIf(&c.Duration, *duration)
	setIf(&c.TraceTimeout, *traceTimeout)
	setIf(&c.CoalesceRounds, *coalesceRounds)
	setIf(&c.ZipfObjects, *zipfObjects)
	setIf(&c.ZipfRequests, *zipfRequests)
	setIf(&c.VideoObjects, *videoObjects)
	setIf(&c.VideoRequests, *videoRequests)
	var err error
	if c.BytesPerSec, err = parseSize(*bw); err != nil {
		return nil, usageErrorf("--bandwidth: %v", err)
	}
	if *hotSizes != "" {
		c.HotSizes = nil
		for _, f := range strings.Split(*hotSizes, ",") {
			n, err := parseSize(strings.TrimSpace(f))
			if err != nil || n <= 0 {
				return nil, usageErrorf("--hot-sizes: %q is not a size", f)
			}
			c.HotSizes = append(c.HotSizes, n)
		}
	}
	if *coalesceSize != "" {
		if c.CoalesceSize, err = parseSize(*coalesceSize); err != nil {
			return nil, usageErrorf("--coalesce-size: %v", err)
		}
		if c.CoalesceSize <= 0 {
			return nil, usageErrorf("--coalesce-size must be positive")
		}
	}
	if *videoSize != "" {
		if c.VideoSize, err = parseSize(*videoSize); err != nil {
			return nil, usageErrorf("--video-size: %v", err)
		}
	}
	if c.Workloads, err = parseList(*workloads, workloadNames, "workload"); err != nil {
		return nil, err
	}
	if *participants != "" {
		c.explicit = true
		if c.Participants, err = parseList(*participants, participantNames, "participant"); err != nil {
			return nil, err
		}
	}
	switch {
	case c.Repeat < 1 || c.Repeat > 20:
		return nil, usageErrorf("--repeat must be in [1, 20]")
	case c.PacedRate <= 0:
		return nil, usageErrorf("--paced-rate must be positive")
	case c.Concurrency < 1, c.CoalesceClients < 1:
		return nil, usageErrorf("concurrency must be at least 1")
	case c.CoalesceRounds < 1:
		return nil, usageErrorf("--coalesce-rounds must be at least 1")
	case c.ZipfObjects < 1, c.ZipfRequests < 1, c.VideoObjects < 1, c.VideoRequests < 1:
		return nil, usageErrorf("object and request counts must be at least 1")
	case c.VideoSize < c.VideoRange:
		return nil, usageErrorf("--video-size must be at least %s", sizeName(c.VideoRange))
	case c.CacheFraction <= 0 || c.CacheFraction > 1:
		return nil, usageErrorf("--cache-fraction must be in (0, 1]")
	case c.PricePerGB < 0:
		return nil, usageErrorf("--price must not be negative")
	}
	c.nginx, _ = exec.LookPath("nginx")
	c.varnishd, _ = exec.LookPath("varnishd")
	return c, nil
}

func setIf[T comparable](dst *T, v T) {
	var zero T
	if v != zero {
		*dst = v
	}
}

// parseList splits a comma-separated list and checks every name.
func parseList(s string, known []string, what string) ([]string, error) {
	var out []string
	for _, name := range strings.Split(s, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		found := false
		for _, k := range known {
			found = found || k == name
		}
		if !found {
			return nil, usageErrorf("unknown %s %q (known: %s)", what, name, strings.Join(known, ", "))
		}
		out = append(out, name)
	}
	if len(out) == 0 {
		return nil, usageErrorf("no %s given", what)
	}
	return out, nil
}

// parseSize parses bytes with an optional KiB, MiB or GiB (or K, M, G)
// suffix.
func parseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}} {
		if v, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = v, u.mult
			break
		}
	}
	n, err := strconv.ParseFloat(s, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("bad size %q", s)
	}
	return int64(n * float64(mult)), nil
}
