package bench

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// varnish is Varnish Cache in front of the upstream: a second caching peer
// that coalesces misses by streaming one fetch to every waiter. Its
// storage is malloc, sized to the workload's budget. It runs with -j none:
// as the current user, root included (the default jail, as root, switches
// to Varnish's own users, which cannot read a private scratch directory).
type varnish struct {
	bin string
	p   *proc
	dir string
}

func (*varnish) name() string  { return "varnish" }
func (*varnish) caching() bool { return true }

// varnishVCL caches 200 and 206 answers for an hour (Synapse media is
// immutable), nothing else, and says HIT or MISS in X-Cache. PUT and other
// methods pass (builtin VCL); GET misses fetch whole objects, which is
// what Varnish does with ranges.
func varnishVCL(upHost, upPort string) string {
	return fmt.Sprintf(`vcl 4.1;
backend origin {
    .host = "%s";
    .port = "%s";
    .connect_timeout = 5s;
    .first_byte_timeout = 60s;
    .between_bytes_timeout = 60s;
}
sub vcl_backend_response {
    if (beresp.status == 200 || beresp.status == 206) {
        set beresp.ttl = 1h;
    } else {
        set beresp.ttl = 0s;
        set beresp.uncacheable = true;
    }
    set beresp.grace = 0s;
}
sub vcl_deliver {
    if (obj.hits > 0) {
        set resp.http.X-Cache = "HIT";
    } else {
        set resp.http.X-Cache = "MISS";
    }
}
`, upHost, upPort)
}

func (v *varnish) start(ctx context.Context, e *env, w *workload) (target, error) {
	u, err := url.Parse(e.upURL)
	if err != nil {
		return target{}, err
	}
	v.dir = filepath.Join(e.dir, "varnish")
	if err := os.MkdirAll(v.dir, 0o755); err != nil {
		return target{}, err
	}
	vcl := filepath.Join(v.dir, "bench.vcl")
	if err := os.WriteFile(vcl, []byte(varnishVCL(u.Hostname(), u.Port())), 0o644); err != nil {
		return target{}, err
	}
	for attempt := 0; ; attempt++ {
		port, err := freePort()
		if err != nil {
			return target{}, err
		}
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		// -F: foreground; -j none: no privilege switch; -n: private work
		// dir; -T: management on loopback.
		p, err := startProc("varnish", nil, v.bin, "-F", "-j", "none", "-n", filepath.Join(v.dir, "work"), "-a", addr,
			"-T", "127.0.0.1:0", "-f", vcl, "-s", fmt.Sprintf("malloc,%d", w.cacheBytes))
		if err != nil {
			return target{}, err
		}
		v.p = p
		base := "http://" + addr
		err = waitHTTP(ctx, p, base+"/", 20*time.Second)
		if err == nil {
			return target{base: base, bucket: benchBucket}, nil
		}
		p.stop()
		v.p = nil
		if attempt < 2 && strings.Contains(err.Error(), "in use") {
			continue
		}
		return target{}, err
	}
}

func (v *varnish) alive() error {
	if v.p == nil {
		return fmt.Errorf("varnish not started")
	}
	return v.p.exited()
}

func (v *varnish) cpu() (time.Duration, bool) {
	if v.p == nil {
		return 0, false
	}
	return v.p.cpu(), true
}

func (*varnish) note() string { return "" }

func (v *varnish) stop() {
	if v.p != nil {
		v.p.stop()
		v.p = nil
	}
}
