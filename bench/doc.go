// Package bench is s3edge's side-by-side benchmark: it starts every
// participant on loopback, in front of the same shaped S3 upstream, plays
// the same workloads to each, and reports throughput, latency, hit ratios
// and upstream egress, so that the figures are ratios measured on one
// machine in one run.
//
// Data flow: a workload (workload.go, synapse.go) is a deterministic trace
// of steps built from a seed, plus the objects it needs. For each workload
// the runner (runner.go) seeds a fresh upstream (origin.go: an
// upstreamtest.Server in process, or "s3edge bench upstream" in another
// process), then for each participant (participant.go, nginx.go,
// varnish.go) starts a fresh instance with an empty cache of the
// workload's budget, warms it when the phase asks, zeroes the upstream's
// counters, and replays the trace with the closed-loop load generator
// (loadgen.go). Every request's latency, time to first byte, bytes and
// X-Cache answer land in a slot preallocated for it; summarize turns them
// into a Row with exact percentiles, and hit ratios from the upstream's
// counters and from X-Cache, beside an exact LRU simulation (lrusim) of
// the same requests. report.go and svg.go write the result.
//
// Invariants: every wait is bounded (phase deadlines, start timeouts,
// HTTP timeouts); every server listens on 127.0.0.1; every process the
// benchmark starts runs in its own process group and is stopped when its
// workload ends, when the run fails or is interrupted, and (Linux) when
// the benchmark itself dies. A participant that cannot start or dies is a
// failed row, never a missing one.
package bench
