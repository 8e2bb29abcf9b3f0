package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3edge/s3edge/upstream/upstreamtest"
)

// TestMain lets the test binary stand in for the s3edge binary: with
// S3EDGE_TEST_SERVE=1 it runs the command line it was given, so that tests
// can kill a real process at any moment.
func TestMain(m *testing.M) {
	if os.Getenv("S3EDGE_TEST_SERVE") == "1" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
		stop()
		os.Exit(code)
	}
	os.Exit(m.Run())
}

var childListeningRE = regexp.MustCompile(`^s3edge listening on (http://\S+)$`)

// startChild runs `s3edge serve --config cfg` as a separate process and
// returns it with its endpoint.
func startChild(t *testing.T, cfg string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "serve", "--config", cfg)
	cmd.Env = append(os.Environ(), "S3EDGE_TEST_SERVE=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if m := childListeningRE.FindStringSubmatch(sc.Text()); m != nil {
				found <- m[1]
			}
		}
		io.Copy(io.Discard, out)
	}()
	select {
	case u := <-found:
		return cmd, u
	case <-time.After(30 * time.Second):
		t.Fatalf("s3edge did not start:\n%s", stderr.String())
	}
	return nil, ""
}

// childSetup writes the configuration of a child s3edge in front of the
// upstream at upURL (virtual bucket "media" on its bucket "far", one
// credential allowed actions, then the extra YAML) and returns its path
// and a client for the child's endpoint.
func childSetup(t *testing.T, upURL, actions, extra string) (string, func(endpoint string) *s3.Client) {
	t.Helper()
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "s3edge.yaml")
	cfg := fmt.Sprintf(`listen: 127.0.0.1:0
data_dir: %s
upstreams:
  far: {type: s3, endpoint: %s, region: us-east-1, access_key_id: k, secret_access_key: s, path_style: true}
buckets:
  media: {upstream: far, bucket: far}
credentials:
  - access_key_id: child
    secret_access_key: child-secret-123456
    grants: [{bucket: media, actions: [%s]}]
cache: {max_size: 1GiB, min_free_disk: 0}
%s`, filepath.Join(dir, "data"), upURL, actions, extra)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfgPath, func(endpoint string) *s3.Client {
		return s3.New(s3.Options{
			BaseEndpoint: aws.String(endpoint), Region: "us-east-1", UsePathStyle: true,
			Credentials:      credentials.NewStaticCredentialsProvider("child", "child-secret-123456", ""),
			RetryMaxAttempts: 1,
		})
	}
}

// TestKill9DuringFills kills s3edge with SIGKILL while 100 fills are in
// flight, restarts it on the same data directory, and checks that every
// object it then serves is byte-identical to the upstream's: nothing torn is
// ever served, whatever state the kill left on disk.
func TestKill9DuringFills(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	up := upstreamtest.NewServer(upstreamtest.Shape{BytesPerSec: 1 << 20}, "far")
	t.Cleanup(up.Close)
	rng := rand.New(rand.NewPCG(1, 2))
	objects := make(map[string][]byte)
	for i := range 100 {
		size := 4 << 10
		if i%2 == 1 {
			size = 768 << 10 // still streaming when the kill comes
		}
		b := make([]byte, size)
		for j := range b {
			b[j] = byte(rng.Uint32())
		}
		key := fmt.Sprintf("local_content/%02d/obj", i)
		objects[key] = b
		up.PutObject("far", key, b)
	}
	cfgPath, client := childSetup(t, up.URL, "read, list", "")
	proc, endpoint := startChild(t, cfgPath)
	c := client(endpoint)
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	for key := range objects {
		wg.Go(func() {
			out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("media"), Key: aws.String(key)})
			if err == nil {
				io.Copy(io.Discard, out.Body)
				out.Body.Close()
			}
		})
	}
	// Kill once every fill has started and the small ones had time to land.
	deadline := time.Now().Add(30 * time.Second)
	for up.Requests("GetObject") < int64(len(objects)) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	if err := proc.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	proc.Wait()
	cancel()
	wg.Wait()
	t.Logf("killed with %d upstream GETs started", up.Requests("GetObject"))

	up.SetShape(upstreamtest.Shape{})
	_, endpoint = startChild(t, cfgPath)
	c = client(endpoint)
	hits := 0
	for key, want := range objects {
		var res *http.Response
		out, err := c.GetObject(t.Context(), &s3.GetObjectInput{Bucket: aws.String("media"), Key: aws.String(key)},
			func(o *s3.Options) { o.HTTPClient = captureClient{&res} })
		if err != nil {
			t.Fatalf("GET %s after restart: %v", key, err)
		}
		got, err := io.ReadAll(out.Body)
		out.Body.Close()
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("GET %s after restart: %d bytes, %v; not the upstream's bytes", key, len(got), err)
		}
		if res != nil && res.Header.Get("X-Cache") == "HIT" {
			hits++
		}
	}
	t.Logf("after restart: %d of %d objects were hits, all byte-identical", hits, len(objects))
	if hits == 0 {
		t.Error("no object survived the kill as a cache entry (the small ones had landed)")
	}
}

// TestSIGTERMLetsFillsCommit: a fill whose client has left is still running
// when s3edge is told to stop; it finishes and commits before the process
// exits, so the egress it cost is not thrown away.
func TestSIGTERMLetsFillsCommit(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	up := upstreamtest.NewServer(upstreamtest.Shape{BytesPerSec: 1 << 20}, "far")
	t.Cleanup(up.Close)
	want := bytes.Repeat([]byte("s3edge fill "), 64<<10) // 768 KiB: 0.75 s from the upstream
	up.PutObject("far", "local_content/aa/bb/cc", want)
	cfgPath, client := childSetup(t, up.URL, "read", "limits: {shutdown_timeout: 20s}\n")
	get := func(c *s3.Client) (*s3.GetObjectOutput, *http.Response) {
		var res *http.Response
		out, err := c.GetObject(t.Context(), &s3.GetObjectInput{Bucket: aws.String("media"), Key: aws.String("local_content/aa/bb/cc")},
			func(o *s3.Options) { o.HTTPClient = captureClient{&res} })
		if err != nil {
			t.Fatal(err)
		}
		return out, res
	}

	proc, endpoint := startChild(t, cfgPath)
	out, _ := get(client(endpoint))
	if _, err := io.ReadFull(out.Body, make([]byte, 1000)); err != nil {
		t.Fatal(err)
	}
	out.Body.Close() // the client leaves
	start := time.Now()
	if err := proc.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := proc.Wait(); err != nil {
		t.Fatalf("s3edge exited with %v after SIGTERM", err)
	}
	t.Logf("s3edge stopped %v after SIGTERM", time.Since(start).Round(time.Millisecond))

	up.SetShape(upstreamtest.Shape{})
	before := up.Requests("GetObject")
	_, endpoint = startChild(t, cfgPath)
	out, res := get(client(endpoint))
	got, err := io.ReadAll(out.Body)
	out.Body.Close()
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("GET after restart: %d bytes, %v", len(got), err)
	}
	if x := res.Header.Get("X-Cache"); x != "HIT" || up.Requests("GetObject") != before {
		t.Fatalf("GET after restart: X-Cache %s, %d upstream GETs; want a HIT", x, up.Requests("GetObject")-before)
	}
}

// captureClient records the last response, for its headers.
type captureClient struct{ res **http.Response }

func (c captureClient) Do(r *http.Request) (*http.Response, error) {
	res, err := http.DefaultClient.Do(r)
	*c.res = res
	return res, err
}
