package bench

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/s3edge/s3edge/bench/zipf"
)

// workload is one scenario of the suite: the objects it needs in the
// upstream, the cache budget it gives caching participants, and its
// measured phases (one report row each).
type workload struct {
	name       string
	desc       string
	objects    []object // seeded into the upstream (and the static root)
	cacheBytes int64    // every caching participant's budget
	static     bool     // nginx-static can play it (reads of seeded objects only)
	paced      bool     // hits at a fixed rate: direct cannot play it
	phases     []*phase
	// probe is played by one client straight to the upstream before the
	// participants: its median TTFB is the upstream's own, unloaded.
	probe        []step
	upstreamTTFB float64 // ms, set by the runner from probe
}

// object is an object seeded before the workload runs.
type object struct {
	key  string
	size int64
}

// phase is one measured run on a participant. A participant instance
// plays all phases of a workload in order; the upstream's counters are
// reset after warm, before the rounds.
type phase struct {
	name        string   // report row, "hot/4KiB"
	warm        []step   // played first, not measured
	rounds      [][]step // each round starts all clients at once
	concurrency int
	maxTime     time.Duration // per round
	timed       bool          // ends by maxTime by design (throughput runs)
	lru         bool          // report an exact LRU of the GETs at the workload's cacheBytes
	rate        float64       // paces the rounds (open loop); 0: closed loop
	// wrkKeys, when set, are read round-robin by wrk instead of rounds
	// (all of wrkSize bytes).
	wrkKeys []string
	wrkSize int64
}

// requests counts the measured requests of p.
func (p *phase) requests() int {
	n := 0
	for _, r := range p.rounds {
		for _, s := range r {
			n += len(s)
		}
	}
	return n
}

// workloadNames lists the workloads in the order the suite runs them.
var workloadNames = []string{"hot", "wrk", "paced", "coalesce", "zipf", "synapse", "video"}

// buildWorkload returns the named workload for cfg.
func buildWorkload(name string, cfg *Config) (*workload, error) {
	switch name {
	case "hot":
		return hotWorkload(cfg), nil
	case "wrk":
		return wrkWorkload(cfg), nil
	case "paced":
		return pacedWorkload(cfg), nil
	case "coalesce":
		return coalesceWorkload(cfg), nil
	case "zipf":
		return zipfWorkload(cfg)
	case "synapse":
		return synapseWorkload(cfg)
	case "video":
		return videoWorkload(cfg), nil
	}
	return nil, fmt.Errorf("unknown workload %q (known: %s)", name, strings.Join(workloadNames, ", "))
}

// hotWorkload: objects of each size, all cached after two warm passes, read
// by cfg.Concurrency clients for cfg.Duration per size. The trace is long
// enough that the time bound ends it.
func hotWorkload(cfg *Config) *workload {
	w := &workload{name: "hot", static: true,
		desc: fmt.Sprintf("%d objects per size, warmed twice, then %d clients read them round-robin for %v per size (bounded at %d requests)",
			cfg.HotObjects, cfg.Concurrency, cfg.Duration, cfg.HotRequests)}
	var total int64
	for _, size := range cfg.HotSizes {
		var keys []string
		for i := range cfg.HotObjects {
			k := fmt.Sprintf("hot/%s/%03d", sizeName(size), i)
			keys = append(keys, k)
			w.objects = append(w.objects, object{k, size})
			total += size
		}
		p := &phase{name: "hot/" + sizeName(size), concurrency: cfg.Concurrency, maxTime: cfg.Duration, timed: true}
		for range 2 {
			for _, k := range keys {
				p.warm = append(p.warm, step{{op: opGet, key: k, want: size}})
			}
		}
		round := make([]step, cfg.HotRequests)
		for i := range round {
			round[i] = step{{op: opGet, key: keys[i%len(keys)], want: size}}
		}
		p.rounds = [][]step{round}
		w.phases = append(w.phases, p)
	}
	w.cacheBytes = 2*total + 64<<20
	return w
}

// pacedWorkload: the hot objects up to 256 KiB (the sizes the latency
// target names), warmed twice, then read at a fixed rate, well below
// every participant's capacity, by cfg.Concurrency clients for
// cfg.Duration per size. Closed-loop runs saturate the two CPUs the
// load generator shares with the server, so their tail is the operating
// system's time slices; a paced run's tail is the server's own.
func pacedWorkload(cfg *Config) *workload {
	hot := hotWorkload(cfg)
	w := &workload{name: "paced", static: true, paced: true, cacheBytes: hot.cacheBytes,
		desc: fmt.Sprintf("the hot objects up to 256KiB, warmed twice, then read round-robin at %.0f requests/s (open loop, latency counted from each request's due time) by up to %d clients for %v per size",
			cfg.PacedRate, cfg.Concurrency, cfg.Duration)}
	n := max(int(cfg.PacedRate*cfg.Duration.Seconds()), 1)
	for i, hp := range hot.phases {
		size := cfg.HotSizes[i]
		if size > 256<<10 {
			continue
		}
		for _, o := range hot.objects {
			if strings.HasPrefix(o.key, "hot/"+sizeName(size)+"/") {
				w.objects = append(w.objects, o)
			}
		}
		p := &phase{name: fmt.Sprintf("paced/%s@%.0f", sizeName(size), cfg.PacedRate), concurrency: cfg.Concurrency,
			maxTime: 2*cfg.Duration + 5*time.Second, rate: cfg.PacedRate, warm: hp.warm}
		p.rounds = [][]step{hp.rounds[0][:min(n, len(hp.rounds[0]))]}
		w.phases = append(w.phases, p)
	}
	return w
}

// coalesceWorkload: in each round, cfg.CoalesceClients clients ask for the
// same cold object at the same instant.
func coalesceWorkload(cfg *Config) *workload {
	size := cfg.CoalesceSize
	w := &workload{name: "coalesce",
		desc: fmt.Sprintf("%d rounds; in each, %d clients GET the same cold %s object at once (upstream first byte %v)",
			cfg.CoalesceRounds, cfg.CoalesceClients, sizeName(size), cfg.FirstByte)}
	p := &phase{name: "coalesce/" + sizeName(size), concurrency: cfg.CoalesceClients, maxTime: cfg.TraceTimeout}
	for r := range cfg.CoalesceRounds {
		k := fmt.Sprintf("coalesce/%02d", r)
		w.objects = append(w.objects, object{k, size})
		round := make([]step, cfg.CoalesceClients)
		for i := range round {
			round[i] = step{{op: opGet, key: k, want: size}}
		}
		p.rounds = append(p.rounds, round)
	}
	w.objects = append(w.objects, object{"coalesce/probe", size})
	for range 7 {
		w.probe = append(w.probe, step{{op: opGet, key: "coalesce/probe", want: size}})
	}
	w.phases = []*phase{p}
	w.cacheBytes = int64(cfg.CoalesceRounds)*size + 64<<20
	return w
}

// zipfWorkload: a Zipf(s) trace over equal objects, the cache at a fraction
// of the working set, replayed in the same order to every participant.
func zipfWorkload(cfg *Config) (*workload, error) {
	z, err := zipf.New(cfg.ZipfObjects, cfg.ZipfS)
	if err != nil {
		return nil, err
	}
	size := cfg.ZipfSize
	w := &workload{name: "zipf", static: true}
	for i := range cfg.ZipfObjects {
		w.objects = append(w.objects, object{fmt.Sprintf("zipf/%05d", i), size})
	}
	working := int64(cfg.ZipfObjects) * size
	w.cacheBytes = max(int64(float64(working)*cfg.CacheFraction), size)
	w.desc = fmt.Sprintf("Zipf s=%.2f over %d objects of %s, %d GETs by %d clients in trace order; cache %s (%.0f%% of the %s working set)",
		cfg.ZipfS, cfg.ZipfObjects, sizeName(size), cfg.ZipfRequests, cfg.Concurrency, sizeName(w.cacheBytes),
		100*cfg.CacheFraction, sizeName(working))
	r := rand.New(rand.NewPCG(cfg.Seed, 0x21bf))
	round := make([]step, cfg.ZipfRequests)
	for i := range round {
		round[i] = step{{op: opGet, key: w.objects[z.Rank(r)].key, want: size}}
	}
	w.phases = []*phase{{name: "zipf", rounds: [][]step{round}, concurrency: cfg.Concurrency, maxTime: cfg.TraceTimeout, lru: true}}
	return w, nil
}

// videoWorkload: random (unaligned) ranges of cfg.VideoRange bytes over
// large objects, as a player seeking through videos.
func videoWorkload(cfg *Config) *workload {
	w := &workload{name: "video", static: true}
	for i := range cfg.VideoObjects {
		w.objects = append(w.objects, object{fmt.Sprintf("video/%02d.mp4", i), cfg.VideoSize})
	}
	w.cacheBytes = int64(cfg.VideoObjects)*cfg.VideoSize + 64<<20
	w.desc = fmt.Sprintf("%d random %s ranges over %d objects of %s by %d clients; cache holds them all",
		cfg.VideoRequests, sizeName(cfg.VideoRange), cfg.VideoObjects, sizeName(cfg.VideoSize), cfg.Concurrency)
	r := rand.New(rand.NewPCG(cfg.Seed, 0x71de0))
	round := make([]step, cfg.VideoRequests)
	for i := range round {
		o := w.objects[r.IntN(len(w.objects))]
		off := r.Int64N(o.size - cfg.VideoRange + 1)
		round[i] = step{{op: opGet, key: o.key, want: cfg.VideoRange,
			rng: fmt.Sprintf("bytes=%d-%d", off, off+cfg.VideoRange-1)}}
	}
	w.phases = []*phase{{name: "video", rounds: [][]step{round}, concurrency: cfg.Concurrency, maxTime: cfg.TraceTimeout}}
	return w
}

// content returns the bytes of the object key: pseudo-random, derived from
// the key and the seed, so every object differs (s3edge stores identical
// bytes once, which would flatter it) and nothing needs to be kept.
func content(seed uint64, key string, size int64) []byte {
	h := fnv.New64a()
	h.Write([]byte(key))
	var s [32]byte
	for i := range 8 {
		s[i] = byte(seed >> (8 * i))
	}
	copy(s[8:], h.Sum(nil))
	b := make([]byte, size)
	_, _ = rand.NewChaCha8(s).Read(b)
	return b
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// sizeName prints a size the way the workloads name them: 4KiB, 1MiB, 1.5MiB.
func sizeName(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%dGiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%dMiB", n>>20)
	case n >= 1<<20:
		return fmt.Sprintf("%.1fMiB", float64(n)/(1<<20))
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%dKiB", n>>10)
	}
	return fmt.Sprintf("%dB", n)
}
