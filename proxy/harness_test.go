package proxy_test

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/s3edge/s3edge/cache"
	"github.com/s3edge/s3edge/policy"
	"github.com/s3edge/s3edge/proxy"
	"github.com/s3edge/s3edge/upstream"
	"github.com/s3edge/s3edge/upstream/upstreamtest"
)

// Credentials of the test principals.
const (
	fullKey, fullSecret   = "synapse", "synapse-secret-0123456789"
	thumbKey, thumbSecret = "thumbs", "thumbs-secret-0123456789"
	otherKey, otherSecret = "other", "other-secret-0123456789"
	upstreamBucket        = "shared"
)

// env is a complete s3edge in process: a gofakes3 upstream behind shaping, the
// proxy on a real listener, and the clients' view of it.
type env struct {
	t        testing.TB
	up       *upstreamtest.Server
	srv      *httptest.Server
	spoolDir string
	cache    *cache.Cache
	cacheDir string
	metrics  *prometheus.Registry
}

type envOptions struct {
	tls         bool
	shape       upstreamtest.Shape
	baseDomains []string
	stall       time.Duration
	cache       *cache.Options // nil: no cache
	rule        policy.CacheRule
	listener    func(net.Listener) net.Listener // wraps the proxy's listener
	upstream    upstream.Upstream               // replaces the gofakes3 upstream's client
	memorySpool int64                           // proxy.Config.MemorySpool
	noXCache    bool                            // proxy.Config.NoXCache
}

// newEnv starts an upstream and s3edge. Virtual bucket "media" maps to
// upstream bucket "shared" under prefix "hs1/", "media2" to the same bucket
// under "hs2/": two homeservers sharing one provider account.
func newEnv(t testing.TB, o envOptions) *env {
	t.Helper()
	up := upstreamtest.NewServer(o.shape, upstreamBucket)
	t.Cleanup(up.Close)
	pol, err := policy.New(policy.Config{
		Buckets: map[string]policy.Bucket{
			"media":  {Upstream: "far", Bucket: upstreamBucket, Prefix: "hs1/", PublicReadPrefixes: []string{"public/"}, Cache: o.rule},
			"media2": {Upstream: "far", Bucket: upstreamBucket, Prefix: "hs2/"},
		},
		Credentials: []policy.Credential{
			{AccessKeyID: fullKey, SecretAccessKey: fullSecret, Grants: []policy.Grant{{Bucket: "media", Actions: policy.Read | policy.Write | policy.List | policy.Delete}}},
			{AccessKeyID: thumbKey, SecretAccessKey: thumbSecret, Grants: []policy.Grant{{Bucket: "media", Prefix: "local_thumbnails/", Actions: policy.Read | policy.List}}},
			{AccessKeyID: otherKey, SecretAccessKey: otherSecret, Grants: []policy.Grant{{Bucket: "media2", Actions: policy.Read | policy.Write | policy.List | policy.Delete}}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	spool := filepath.Join(t.TempDir(), "spool")
	var c *cache.Cache
	cacheDir := filepath.Join(t.TempDir(), "cache")
	if o.cache != nil {
		var err error
		if c, err = cache.Open(cacheDir, *o.cache); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
	}
	var log *slog.Logger
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	var far upstream.Upstream = up.Client()
	if o.upstream != nil {
		far = o.upstream
	}
	reg := prometheus.NewRegistry()
	p, err := proxy.New(proxy.Config{
		Metrics:      reg,
		Policy:       func() *policy.Policy { return pol },
		Upstreams:    map[string]upstream.Upstream{"far": far},
		SpoolDir:     spool,
		Logger:       log,
		BaseDomains:  o.baseDomains,
		StallTimeout: o.stall,
		Cache:        c,
		MemorySpool:  o.memorySpool,
		NoXCache:     o.noXCache,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(p)
	srv.Config.ConnContext = proxy.ConnContext // as cmd/s3edge serves it
	if o.listener != nil {
		srv.Listener = o.listener(srv.Listener)
	}
	if o.tls {
		srv.Listener = proxy.Listener(srv.Listener)
		srv.StartTLS()
	} else {
		// As cmd/s3edge serves plain HTTP: hits on the hit path, the
		// rest replayed on net/http, so every test here crosses both.
		hl := p.HitListener(srv.Listener, proxy.HitOptions{ReadHeaderTimeout: 10 * time.Second})
		srv.Listener = hl
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := hl.Shutdown(ctx); err != nil {
				t.Errorf("hit listener shutdown: %v", err)
			}
		})
		srv.Start()
	}
	t.Cleanup(srv.Close)
	return &env{t: t, up: up, srv: srv, spoolDir: spool, cache: c, cacheDir: cacheDir, metrics: reg}
}

// counter returns the value of the proxy's counter name with the given
// label values (0 if it has no such child yet).
func (e *env) counter(name string, labels map[string]string) float64 {
	e.t.Helper()
	mfs, err := e.metrics.Gather()
	if err != nil {
		e.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if labels[lp.GetName()] != lp.GetValue() {
					continue next
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

// client returns an aws-sdk-go-v2 client as a user would configure it:
// path style, static keys, the SDK's default checksum behaviour.
func (e *env) client(key, secret string, opts ...func(*s3.Options)) *s3.Client {
	hc := e.srv.Client()
	return s3.New(s3.Options{
		BaseEndpoint: aws.String(e.srv.URL),
		Region:       "us-east-1",
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(key, secret, ""),
		HTTPClient:   hc,
	}, opts...)
}

// spoolEmpty fails the test if a request body was left in the spool.
func (e *env) spoolEmpty() {
	e.t.Helper()
	ents, err := os.ReadDir(e.spoolDir)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, de := range ents {
		e.t.Errorf("spool file left behind: %s", de.Name())
	}
}

func ctx(t testing.TB) context.Context { return t.Context() }

// dial opens a raw connection to the proxy with d, under TLS (trusting the
// test server's certificate) when the proxy serves TLS. It returns the TCP
// connection, for socket options and counters, and the one to talk over.
func (e *env) dial(d *net.Dialer) (tcp, c net.Conn) {
	e.t.Helper()
	tcp, err := d.Dial("tcp", e.srv.Listener.Addr().String())
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { tcp.Close() })
	if e.srv.TLS == nil {
		return tcp, tcp
	}
	cfg := e.httpClient().Transport.(*http.Transport).TLSClientConfig.Clone()
	cfg.ServerName = "127.0.0.1" // httptest's certificate names the loopback address
	tc := tls.Client(tcp, cfg)
	if err := tc.Handshake(); err != nil {
		e.t.Fatal(err)
	}
	return tcp, tc
}

// httpClient returns a client for raw requests that trusts the test
// server's certificate.
func (e *env) httpClient() *http.Client {
	if e.srv.TLS == nil {
		return http.DefaultClient
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: e.srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs}}}
}

// settle waits, bounded, until ok holds, then gives late updates a moment
// and reports whether it still holds. For state the server changes after
// the client has its answer: a response's last write is counted when the
// call returns, which can be after the client read the last byte.
func settle(ok func() bool) bool {
	for deadline := time.Now().Add(5 * time.Second); !ok() && time.Now().Before(deadline); {
		time.Sleep(2 * time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond)
	return ok()
}
