package bench

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"time"

	"github.com/s3edge/s3edge/upstream/upstreamtest"
)

// upstreamMain runs "s3edge bench upstream": the shaped gofakes3 server as
// its own process, until ctx is cancelled. The S3 API is served on --addr;
// the control paths (stats, reset, unshaped put) sit beside it so that
// "s3edge bench --upstream URL" can seed it and read its counters.
//
// upstreamtest.Server listens on a port of its own choosing, so --addr is
// a reverse proxy to it (~0.1 ms per request on loopback, small beside any
// first-byte delay worth simulating).
func upstreamMain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench upstream", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:9100", "listen address")
	var shape upstreamtest.Shape
	fs.DurationVar(&shape.FirstByte, "first-byte", 50*time.Millisecond, "delay before the first byte of every answer")
	fs.DurationVar(&shape.Jitter, "jitter", 0, "random extra delay, uniform in [0, jitter)")
	bw := fs.String("bandwidth", "0", "per-response bandwidth cap in bytes/s (KiB, MiB, GiB suffixes); 0 = unlimited")
	failRate := fs.Float64("fail-rate", 0, "fraction of requests that fail")
	failKind := fs.String("fail", "status", "how they fail: status (503 SlowDown), reset (RST before headers), midbody (RST after 1000 bytes), short (FIN after 1000 bytes)")
	buckets := fs.String("buckets", benchBucket, "comma-separated buckets to create")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: s3edge bench upstream [flags]\n\nA shaped in-memory S3 server (gofakes3; any credentials work) that counts requests\n"+
			"and egress bytes: GET %s for counters, POST %s to zero them. Flags:\n", controlStats, controlReset)
		fs.PrintDefaults()
	}
	if err := parseFlagSet(fs, args); err != nil {
		return err
	}
	var err error
	if shape.BytesPerSec, err = parseSize(*bw); err != nil {
		return usageErrorf("--bandwidth: %v", err)
	}
	if *failRate < 0 || *failRate > 1 {
		return usageErrorf("--fail-rate must be in [0, 1]")
	}
	var fault upstreamtest.Fault
	switch *failKind {
	case "status":
		fault = upstreamtest.Fault{Kind: upstreamtest.FaultStatus, Status: http.StatusServiceUnavailable, Code: "SlowDown"}
	case "reset":
		fault = upstreamtest.ResetBeforeHeaders()
	case "midbody":
		fault = upstreamtest.ResetAfter(1000)
	case "short":
		fault = upstreamtest.ShortBody(1000)
	default:
		return usageErrorf("--fail: unknown kind %q", *failKind)
	}
	if *failRate > 0 {
		rate := *failRate
		shape.Fail = func(*http.Request) upstreamtest.Fault {
			if rand.Float64() < rate {
				return fault
			}
			return upstreamtest.Fault{}
		}
	}
	var names []string
	for _, b := range strings.Split(*buckets, ",") {
		if b = strings.TrimSpace(b); b != "" {
			names = append(names, b)
		}
	}
	srv := upstreamtest.NewServer(shape, names...)
	defer srv.Close()

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	hs := &http.Server{Handler: upstreamHandler(srv, shape), ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(stdout, "upstream listening on http://%s (first byte %v, jitter %v, bandwidth %s, fail rate %g, buckets %s)\n",
		ln.Addr(), shape.FirstByte, shape.Jitter, bandwidth(shape.BytesPerSec), *failRate, strings.Join(names, ","))
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case <-ctx.Done():
	case err := <-errc:
		return err
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_ = hs.Shutdown(sctx)
	b, _ := json.Marshal(statsOf(srv, shape))
	fmt.Fprintf(stdout, "upstream stats: %s\n", b)
	return nil
}

// upstreamHandler serves the control paths and proxies everything else to
// srv.
func upstreamHandler(srv *upstreamtest.Server, shape upstreamtest.Shape) http.Handler {
	target, _ := url.Parse(srv.URL)
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.Transport = &http.Transport{MaxIdleConnsPerHost: 1024, IdleConnTimeout: 90 * time.Second, DisableCompression: true}
	// Flush at once: the client must see the first byte when gofakes3
	// sends it, not when a buffer fills.
	rp.FlushInterval = -1
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+controlStats, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(statsOf(srv, shape))
	})
	mux.HandleFunc("POST "+controlReset, func(w http.ResponseWriter, _ *http.Request) { srv.Reset() })
	mux.HandleFunc("PUT "+controlPut+"{bucket}/{key...}", func(w http.ResponseWriter, r *http.Request) {
		data, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if err := putRecover(srv, r.PathValue("bucket"), r.PathValue("key"), data); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
		}
	})
	mux.Handle("/", rp)
	return mux
}

// putRecover stores an object; upstreamtest panics on a missing bucket.
func putRecover(srv *upstreamtest.Server, bucket, key string, data []byte) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%v", p)
		}
	}()
	srv.PutObject(bucket, key, data)
	return nil
}

var statsOps = []string{"GetObject", "HeadObject", "PutObject", "DeleteObject", "ListObjectsV2", "ListObjects",
	"CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload", "CopyObject"}

func statsOf(srv *upstreamtest.Server, shape upstreamtest.Shape) statsJSON {
	s := statsJSON{Requests: map[string]int64{"": srv.Requests("")}, BytesSent: srv.BytesSent(),
		FirstByte: shape.FirstByte.String(), Jitter: shape.Jitter.String(), BytesPerSec: shape.BytesPerSec}
	for _, op := range statsOps {
		if n := srv.Requests(op); n > 0 {
			s.Requests[op] = n
		}
	}
	return s
}
