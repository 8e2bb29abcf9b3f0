package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/s3edge/s3edge/upstream/upstreamtest"
)

// origin is the distant upstream of a workload: the shaped in-process
// server, or one run by "s3edge bench upstream" in another process. Its
// counters are the egress figures of the report.
type origin interface {
	url() string
	// put stores an object without shaping and without counting it.
	put(ctx context.Context, key string, data []byte) error
	reset(ctx context.Context) error
	stats(ctx context.Context) (upstreamStats, error)
	close()
}

// localOrigin is an upstreamtest.Server in this process.
type localOrigin struct{ s *upstreamtest.Server }

func newLocalOrigin(cfg *Config) *localOrigin {
	return &localOrigin{upstreamtest.NewServer(upstreamtest.Shape{
		FirstByte: cfg.FirstByte, Jitter: cfg.Jitter, BytesPerSec: cfg.BytesPerSec}, benchBucket)}
}

func (o *localOrigin) url() string { return o.s.URL }
func (o *localOrigin) put(_ context.Context, key string, data []byte) error {
	o.s.PutObject(benchBucket, key, data)
	return nil
}
func (o *localOrigin) reset(context.Context) error { o.s.Reset(); return nil }
func (o *localOrigin) stats(context.Context) (upstreamStats, error) {
	return upstreamStats{requests: o.s.Requests(""), gets: o.s.Requests("GetObject"), heads: o.s.Requests("HeadObject"),
		bytes: o.s.BytesSent()}, nil
}
func (o *localOrigin) close() { o.s.Close() }

// Control paths of "s3edge bench upstream", beside the S3 API.
const (
	controlStats = "/_bench/stats" // GET: counters as statsJSON
	controlReset = "/_bench/reset" // POST: zero the counters
	controlPut   = "/_bench/put/"  // PUT /_bench/put/<bucket>/<key>: store, unshaped and uncounted
)

// statsJSON is the body of controlStats.
type statsJSON struct {
	Requests    map[string]int64 `json:"requests"` // by S3 operation; "" is the total
	BytesSent   int64            `json:"bytes_sent"`
	FirstByte   string           `json:"first_byte"`
	Jitter      string           `json:"jitter"`
	BytesPerSec int64            `json:"bytes_per_sec"`
}

// remoteOrigin is an "s3edge bench upstream" process, driven through its
// control paths.
type remoteOrigin struct {
	base string
	c    *http.Client
}

// dialRemoteOrigin checks that base answers as a bench upstream, within a
// few seconds.
func dialRemoteOrigin(ctx context.Context, base string) (*remoteOrigin, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("upstream %q: want http://host:port", base)
	}
	o := &remoteOrigin{base: u.Scheme + "://" + u.Host, c: &http.Client{Timeout: 30 * time.Second}}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := o.stats(ctx); err != nil {
		return nil, fmt.Errorf("upstream %s unreachable or not an 's3edge bench upstream': %w", o.base, err)
	}
	return o, nil
}

func (o *remoteOrigin) url() string { return o.base }

func (o *remoteOrigin) do(ctx context.Context, method, path string, body []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, o.base+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	resp, err := o.c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("%s %s: status %d", method, path, resp.StatusCode)
	}
	return out, err
}

func (o *remoteOrigin) put(ctx context.Context, key string, data []byte) error {
	_, err := o.do(ctx, http.MethodPut, controlPut+benchBucket+"/"+key, data)
	return err
}

func (o *remoteOrigin) reset(ctx context.Context) error {
	_, err := o.do(ctx, http.MethodPost, controlReset, nil)
	return err
}

func (o *remoteOrigin) stats(ctx context.Context) (upstreamStats, error) {
	b, err := o.do(ctx, http.MethodGet, controlStats, nil)
	if err != nil {
		return upstreamStats{}, err
	}
	var s statsJSON
	if err := json.Unmarshal(b, &s); err != nil {
		return upstreamStats{}, fmt.Errorf("stats: %w", err)
	}
	return upstreamStats{requests: s.Requests[""], gets: s.Requests["GetObject"], heads: s.Requests["HeadObject"],
		bytes: s.BytesSent}, nil
}

func (o *remoteOrigin) close() {}
