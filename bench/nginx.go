package bench

import (
	"context"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// nginx is either the physical reference (static: the same bytes served
// from files on disk, no upstream, no signature check) or a caching
// reverse proxy (proxy_cache with proxy_cache_lock and the slice module,
// as nginx's documentation recommends for large objects and ranges).
type nginx struct {
	bin    string
	static bool
	p      *proc
	dir    string
	budget int64
	zone   int64 // keys_zone bytes
}

func (n *nginx) name() string {
	if n.static {
		return "nginx-static"
	}
	return "nginx-cache"
}

func (n *nginx) caching() bool { return !n.static }

// nginxSliceSize is the slice module's slice: 1m as in nginx's docs.
const nginxSliceSize = 1 << 20

// nginxZoneBytes sizes proxy_cache_path's keys_zone for about entries
// cache entries. nginx enforces max_size only when its cache manager wakes,
// every few seconds at best, so on a short trace it never evicts; when the
// keys zone is full it evicts the least recently used entry on the spot
// (and its manager later trims to 7/8 of the zone's count). A zone that
// holds as many entries as the byte budget allows (equal objects) makes
// nginx an LRU bounded like the others. Measured on nginx 1.22 amd64: the
// zone is rounded down to 4 KiB pages, of which two are the slab pool's
// own, and each entry is a 128-byte slab chunk, one chunk spare:
// entries = (zone − 8192)/128 − 1, in steps of 32 (so up to 31 fewer
// than the budget, never more). note() reports what
// nginx actually held at the end.
func nginxZoneBytes(entries int64) int64 {
	const page = 4096
	// Rounded down: nginx never gets more room than the others.
	z := (8192 + 128*(entries+1)) / page * page
	return max(z, 3*page)
}

// nginxZoneEntries is how many entries a zone of z bytes holds.
func nginxZoneEntries(z int64) int64 { return (z/4096*4096-8192)/128 - 1 }

func (n *nginx) config(port int, e *env, w *workload) (string, error) {
	var b strings.Builder
	if os.Geteuid() == 0 {
		// Workers would otherwise run as nobody and fail to read the
		// benchmark's files.
		b.WriteString("user root;\n")
	}
	fmt.Fprintf(&b, `worker_processes auto;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path %[1]s/tmp/body;
    proxy_temp_path %[1]s/tmp/proxy;
    fastcgi_temp_path %[1]s/tmp/fastcgi;
    uwsgi_temp_path %[1]s/tmp/uwsgi;
    scgi_temp_path %[1]s/tmp/scgi;
    default_type application/octet-stream;
    # sendfile without tcp_nopush: Debian's default adds tcp_nopush, which
    # stalls ~40 ms on mid-sized responses on a reused connection; the
    # reference should be nginx at its best.
    sendfile on;
    tcp_nodelay on;
    keepalive_requests 1000000;
    keepalive_timeout 120s;
    client_max_body_size 0;
`, n.dir)
	if n.static {
		fmt.Fprintf(&b, `    server {
        listen 127.0.0.1:%d;
        root %s;
    }
}
`, port, e.static)
		return b.String(), nil
	}
	u, err := url.Parse(e.upURL)
	if err != nil {
		return "", err
	}
	// The byte budget in entries of the mean entry size (slices count
	// one entry each).
	var sum, count int64
	for _, o := range w.objects {
		sum += o.size
		count += (o.size + nginxSliceSize - 1) / nginxSliceSize
	}
	entrySize := int64(nginxSliceSize)
	if count > 0 {
		entrySize = max(sum/count, 1)
	}
	n.zone = nginxZoneBytes(w.cacheBytes / entrySize)
	fmt.Fprintf(&b, `    proxy_cache_path %[1]s/cache levels=1:2 keys_zone=s3:%[2]d max_size=%[3]d inactive=1h use_temp_path=off;
    upstream origin {
        server %[4]s;
        keepalive 128;
    }
    server {
        listen 127.0.0.1:%[5]d;
        location / {
            slice %[6]d;
            proxy_cache s3;
            proxy_cache_key $uri$slice_range;
            proxy_set_header Range $slice_range;
            proxy_cache_valid 200 206 1h;
            proxy_cache_lock on;
            proxy_cache_lock_timeout 60s;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_read_timeout 60s;
            add_header X-Cache $upstream_cache_status always;
            proxy_pass http://origin;
        }
    }
}
`, n.dir, n.zone, w.cacheBytes, u.Host, port, nginxSliceSize)
	return b.String(), nil
}

func (n *nginx) start(ctx context.Context, e *env, w *workload) (target, error) {
	if n.static && (!w.static || e.static == "") {
		return target{}, fmt.Errorf("%w: serves files, cannot take uploads or cold reads", errNotApplicable)
	}
	n.dir, n.budget = filepath.Join(e.dir, n.name()), w.cacheBytes
	if err := os.MkdirAll(filepath.Join(n.dir, "tmp"), 0o755); err != nil {
		return target{}, err
	}
	var p *proc
	// The port is picked free and then bound by nginx: retry if another
	// process took it in between.
	for attempt := 0; ; attempt++ {
		port, err := freePort()
		if err != nil {
			return target{}, err
		}
		conf, err := n.config(port, e, w)
		if err != nil {
			return target{}, err
		}
		file := filepath.Join(n.dir, "nginx.conf")
		if err := os.WriteFile(file, []byte(conf), 0o644); err != nil {
			return target{}, err
		}
		p, err = startProc(n.name(), nil, n.bin, "-p", n.dir, "-c", file, "-e", filepath.Join(n.dir, "error.log"), "-g", "daemon off;")
		if err != nil {
			return target{}, err
		}
		n.p = p
		base := fmt.Sprintf("http://127.0.0.1:%d", port)
		err = waitHTTP(ctx, p, base+"/", 10*time.Second)
		if err == nil {
			return target{base: base, bucket: benchBucket}, nil
		}
		log, _ := os.ReadFile(filepath.Join(n.dir, "error.log"))
		p.stop()
		n.p = nil
		if attempt < 2 && strings.Contains(string(log), "Address already in use") {
			continue
		}
		return target{}, fmt.Errorf("%w; error.log: %s", err, lastLines(string(log), 3))
	}
}

func (n *nginx) alive() error {
	if n.p == nil {
		return fmt.Errorf("%s not started", n.name())
	}
	return n.p.exited()
}

func (n *nginx) cpu() (time.Duration, bool) {
	if n.p == nil {
		return 0, false
	}
	return n.p.cpu(), true
}

// note reports how many entries and bytes nginx's cache held at the end,
// the check that the keys zone bounded it like the byte budget.
func (n *nginx) note() string {
	if n.static || n.dir == "" {
		return ""
	}
	var files, bytes int64
	_ = filepath.WalkDir(filepath.Join(n.dir, "cache"), func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				files++
				bytes += fi.Size()
			}
		}
		return nil
	})
	note := fmt.Sprintf("nginx-cache held %d entries, %s at the end (budget %s; keys zone of %d entries)",
		files, sizeName(bytes), sizeName(n.budget), nginxZoneEntries(n.zone))
	if count, last := logErrors(filepath.Join(n.dir, "error.log")); count > 0 {
		note += fmt.Sprintf("; error.log: %d errors, last: %s", count, last)
	}
	return note
}

// logErrors counts the [error], [crit] and [alert] lines of an nginx
// error log (a keys zone full of entries in use answers 500 and logs
// "could not allocate node") and returns the last one.
func logErrors(file string) (int, string) {
	b, err := os.ReadFile(file)
	if err != nil {
		return 0, ""
	}
	count, last := 0, ""
	for _, line := range strings.Split(string(b), "\n") {
		if strings.Contains(line, "[error]") || strings.Contains(line, "[crit]") || strings.Contains(line, "[alert]") {
			count++
			last = line
		}
	}
	// Drop the timestamp and pids: "2026/01/02 03:04:05 [crit] 12#12: *3 ...".
	if i := strings.Index(last, "["); i >= 0 {
		last = last[i:]
	}
	if len(last) > 200 {
		last = last[:200] + "…"
	}
	return count, last
}

func (n *nginx) stop() {
	if n.p != nil {
		n.p.stop()
		n.p = nil
	}
}

// lastLines returns the last n lines of s, on one line.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(len(lines)-n, 0):], " | ")
}
