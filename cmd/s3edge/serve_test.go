package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// syncBuffer is an io.Writer safe for the server's goroutines; ready is
// closed once the "s3edge listening on" line is complete.
type syncBuffer struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	ready chan struct{}
	once  sync.Once
}

func newSyncBuffer() *syncBuffer { return &syncBuffer{ready: make(chan struct{})} }

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n, err := b.buf.Write(p)
	if listeningRE.Match(b.buf.Bytes()) {
		b.once.Do(func() { close(b.ready) })
	}
	return n, err
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

var (
	listeningRE = regexp.MustCompile(`(?m)^s3edge listening on (https?://[^\s/]+)\n`)
	exportRE    = regexp.MustCompile(`(?m)^export AWS_ACCESS_KEY_ID=(\S+) AWS_SECRET_ACCESS_KEY=(\S+) AWS_DEFAULT_REGION=us-east-1$`)
	metricsRE   = regexp.MustCompile(`msg="metrics listening" url=(http://\S+/metrics)`)
)

// instance is one in-process run of serve.
type instance struct {
	url            string
	stdout, stderr *syncBuffer
	cancel         context.CancelFunc
	done           chan error
}

// startServe runs serve with args until the test ends (or stop is called)
// and returns once it prints its listening line.
func startServe(t *testing.T, args ...string) *instance {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	in := &instance{stdout: newSyncBuffer(), stderr: newSyncBuffer(), cancel: cancel, done: make(chan error, 1)}
	go func() { in.done <- serve(ctx, args, in.stdout, in.stderr) }()
	t.Cleanup(func() {
		cancel()
		<-in.done
		if t.Failed() {
			t.Logf("stdout:\n%s\nstderr:\n%s", in.stdout, in.stderr)
		}
	})
	select {
	case <-in.stdout.ready:
	case err := <-in.done:
		in.done <- err
		t.Fatalf("serve(%q) returned before listening: %v", args, err)
	case <-time.After(time.Minute):
		t.Fatalf("serve(%q) did not print its listening line within a minute", args)
	}
	in.url = listeningRE.FindStringSubmatch(in.stdout.String())[1]
	return in
}

// stop cancels the run and checks that it shut down cleanly.
func (in *instance) stop(t *testing.T) {
	t.Helper()
	in.cancel()
	err := <-in.done
	in.done <- err // for the cleanup
	if err != nil {
		t.Fatalf("serve returned %v after cancel, want nil", err)
	}
}

func (in *instance) demoKeys(t *testing.T) (id, secret string) {
	t.Helper()
	m := exportRE.FindStringSubmatch(in.stdout.String())
	if m == nil {
		t.Fatalf("no export line in the output:\n%s", in.stdout)
	}
	return m[1], m[2]
}

func newClient(endpoint, id, secret string, hc s3.HTTPClient) *s3.Client {
	o := s3.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(id, secret, ""),
		Retryer:      aws.NopRetryer{},
	}
	if hc != nil {
		o.HTTPClient = hc
	}
	return s3.New(o)
}

func putObject(t *testing.T, c *s3.Client, bucket, key, body string) {
	t.Helper()
	_, err := c.PutObject(t.Context(), &s3.PutObjectInput{
		Bucket: aws.String(bucket), Key: aws.String(key), Body: strings.NewReader(body),
		ContentType: aws.String("text/plain"),
	})
	if err != nil {
		t.Fatalf("PutObject(%s/%s): %v", bucket, key, err)
	}
}

func getObject(t *testing.T, c *s3.Client, bucket, key string) string {
	t.Helper()
	out, err := c.GetObject(t.Context(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("GetObject(%s/%s): %v", bucket, key, err)
	}
	defer out.Body.Close()
	data, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatalf("GetObject(%s/%s) body: %v", bucket, key, err)
	}
	return string(data)
}

func listBuckets(t *testing.T, c *s3.Client) []string {
	t.Helper()
	out, err := c.ListBuckets(t.Context(), &s3.ListBucketsInput{})
	if err != nil {
		t.Fatalf("ListBuckets: %v", err)
	}
	var names []string
	for _, b := range out.Buckets {
		names = append(names, aws.ToString(b.Name))
	}
	return names
}

func TestServeDemo(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	args := []string{"--listen", "127.0.0.1:0", "--data-dir", dir}

	in := startServe(t, args...)
	id, secret := in.demoKeys(t)
	if !strings.Contains(in.stdout.String(), "aws --endpoint-url "+in.url+" s3 ls s3://media\n") {
		t.Errorf("no aws CLI line for %s in:\n%s", in.url, in.stdout)
	}
	if !strings.Contains(in.stdout.String(), "      endpoint_url: "+in.url+"\n      access_key_id: "+id+"\n      secret_access_key: "+secret+"\n") {
		t.Errorf("no Synapse snippet with the key in:\n%s", in.stdout)
	}
	if strings.Contains(in.stderr.String(), secret) {
		t.Errorf("the log reveals the demo secret:\n%s", in.stderr)
	}
	if !regexp.MustCompile(`msg="embedded upstream: [^"]*a demo, not for production" upstream=demo `).MatchString(in.stderr.String()) {
		t.Errorf("no log line labels the embedded upstream a demo:\n%s", in.stderr)
	}
	if fi, err := os.Stat(filepath.Join(dir, credentialsName)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("credentials file: %v, %v; want mode 0600", fi, err)
	}

	c := newClient(in.url, id, secret, nil)
	putObject(t, c, "media", "local_content/ab/cd/efgh", "hello, media")
	if got := getObject(t, c, "media", "local_content/ab/cd/efgh"); got != "hello, media" {
		t.Errorf("GetObject = %q, want %q", got, "hello, media")
	}
	if got := listBuckets(t, c); !slices.Equal(got, []string{"media"}) {
		t.Errorf("ListBuckets = %v, want [media]", got)
	}
	bad := newClient(in.url, id, secret+"x", nil)
	if _, err := bad.ListBuckets(t.Context(), &s3.ListBucketsInput{}); err == nil {
		t.Error("ListBuckets with a wrong secret succeeded")
	}
	in.stop(t)

	// A restart on the same directory keeps the key and the objects.
	in = startServe(t, args...)
	id2, secret2 := in.demoKeys(t)
	if id2 != id || secret2 != secret {
		t.Errorf("after restart the key is %s, want %s again", id2, id)
	}
	c = newClient(in.url, id2, secret2, nil)
	if got := getObject(t, c, "media", "local_content/ab/cd/efgh"); got != "hello, media" {
		t.Errorf("GetObject after restart = %q, want %q", got, "hello, media")
	}
	in.stop(t)
}

func TestServeConfigFile(t *testing.T) {
	dir := t.TempDir()
	const secret = "tenant-secret-from-env"
	t.Setenv("S3EDGE_TEST_TENANT_SECRET", secret)
	cfgPath := filepath.Join(dir, "s3edge.yaml")
	if err := os.WriteFile(cfgPath, []byte(`listen: 127.0.0.1:9
data_dir: `+filepath.Join(dir, "data")+`
metrics_listen: 127.0.0.1:0
log: {level: debug, format: text}
upstreams:
  local:
    type: embedded
buckets:
  photos:
    upstream: local
    bucket: shared-store
    prefix: tenant-a/
  other:
    bucket: shared-store
    prefix: tenant-b/
credentials:
  - access_key_id: tenant-a
    secret_access_key: ${S3EDGE_TEST_TENANT_SECRET}
    grants:
      - {bucket: photos, prefix: "", actions: [read, write, list]}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	in := startServe(t, "--config", cfgPath, "--listen", "127.0.0.1:0")
	if strings.Contains(in.stdout.String(), "export ") {
		t.Errorf("demo lines printed with a configuration:\n%s", in.stdout)
	}
	c := newClient(in.url, "tenant-a", secret, nil)
	putObject(t, c, "photos", "cat.jpg", "meow")
	if got := getObject(t, c, "photos", "cat.jpg"); got != "meow" {
		t.Errorf("GetObject = %q, want meow", got)
	}
	if got := listBuckets(t, c); !slices.Equal(got, []string{"photos"}) {
		t.Errorf("ListBuckets = %v, want only the granted [photos]", got)
	}
	_, err := c.GetObject(t.Context(), &s3.GetObjectInput{Bucket: aws.String("other"), Key: aws.String("cat.jpg")})
	if err == nil {
		t.Error("GetObject on a bucket without a grant succeeded")
	}
	if _, err := c.DeleteObject(t.Context(), &s3.DeleteObjectInput{Bucket: aws.String("photos"), Key: aws.String("cat.jpg")}); err == nil {
		t.Error("DeleteObject without the delete action succeeded")
	}

	m := metricsRE.FindStringSubmatch(in.stderr.String())
	if m == nil {
		t.Fatalf("no metrics URL in the log:\n%s", in.stderr)
	}
	resp, err := http.Get(m[1])
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"go_goroutines", "process_open_fds", "s3edge_build_info{", `s3edge_requests_total{op="PutObject",status="200"}`, `s3edge_requests_total{op="GetObject",status="403"}`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	in.stop(t)
	if out := in.stdout.String() + in.stderr.String(); strings.Contains(out, secret) {
		t.Errorf("the output reveals the tenant secret")
	}
}

func TestServeTLS(t *testing.T) {
	dir := t.TempDir()
	certPEM, keyPEM := selfSignedCert(t, time.Now().Add(time.Hour))
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "s3edge.yaml")
	if err := os.WriteFile(cfgPath, []byte("tls:\n  cert_file: "+certFile+"\n  key_file: "+keyFile+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	in := startServe(t, "--config", cfgPath, "--listen", "127.0.0.1:0", "--data-dir", filepath.Join(dir, "data"))
	if !strings.HasPrefix(in.url, "https://127.0.0.1:") {
		t.Fatalf("listening on %s, want https://127.0.0.1:PORT", in.url)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	t.Cleanup(hc.CloseIdleConnections)
	id, secret := in.demoKeys(t)
	c := newClient(in.url, id, secret, hc)
	// Over https the SDK's defaults send an aws-chunked body with a CRC32
	// trailer, which the proxy must decode.
	putObject(t, c, "media", "over-tls", "secret bytes")
	if got := getObject(t, c, "media", "over-tls"); got != "secret bytes" {
		t.Errorf("GetObject over https = %q, want %q", got, "secret bytes")
	}
	_, err := newClient(in.url, id, secret, nil).ListBuckets(t.Context(), &s3.ListBucketsInput{})
	var uerr x509.UnknownAuthorityError
	if !errors.As(err, &uerr) {
		t.Errorf("ListBuckets without trusting the certificate = %v, want an unknown authority error", err)
	}
	in.stop(t)
}

func TestServeHeaderLimit(t *testing.T) {
	in := startServe(t, "--listen", "127.0.0.1:0", "--data-dir", t.TempDir())
	// 80 KiB of headers: above the proxy's 64 KiB limit, below the
	// server's, so the proxy answers as S3 does.
	req, _ := http.NewRequest(http.MethodGet, in.url+"/media/x", nil)
	req.Header.Set("X-Amz-Meta-Big", strings.Repeat("a", 80<<10))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("80 KiB of headers: status %d, want 400", resp.StatusCode)
	}
}
