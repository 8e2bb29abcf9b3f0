package proxy_test

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3edge/s3edge/cache"
	"github.com/s3edge/s3edge/upstream/upstreamtest"
)

// TestDotSegmentsCannotEscape: keys with ".." never reach the upstream, so a
// grant on one prefix cannot reach another prefix or tenant through a
// provider that resolves dot segments.
func TestDotSegmentsCannotEscape(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.up.PutObject(upstreamBucket, "hs1/local_content/private", []byte("mine"))
	e.up.PutObject(upstreamBucket, "hs2/victim", []byte("theirs"))
	c := e.client(fullKey, fullSecret)
	del, err := c.DeleteObjects(ctx(t), &s3.DeleteObjectsInput{Bucket: aws.String("media"), Delete: &types.Delete{Objects: []types.ObjectIdentifier{
		{Key: aws.String("local_thumbnails/../local_content/private")}, {Key: aws.String("x/../../hs2/victim")},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(del.Deleted) != 0 || len(del.Errors) != 2 || aws.ToString(del.Errors[0].Code) != "InvalidArgument" {
		t.Errorf("DeleteObjects with dot segments = deleted %d, errors %+v", len(del.Deleted), del.Errors)
	}
	if _, ok := e.up.Object(upstreamBucket, "hs2/victim"); !ok {
		t.Error("the other tenant's object was deleted")
	}
	_, err = c.CopyObject(ctx(t), &s3.CopyObjectInput{Bucket: aws.String("media"), Key: aws.String("stolen"), CopySource: aws.String("media/x/../../hs2/victim")})
	if apiCode(err) != "InvalidArgument" {
		t.Errorf("CopyObject from a dot-segment source: %v, want InvalidArgument", err)
	}
	if n := e.up.Requests("DeleteObjects") + e.up.Requests("CopyObject"); n != 0 {
		t.Errorf("%d dot-segment requests reached the upstream", n)
	}
}

// TestListingTokensRevealOnlyVisibleKeys: paging through a listing with a
// restricted key never hands out a token or marker naming a key outside
// its grant.
func TestListingTokensRevealOnlyVisibleKeys(t *testing.T) {
	e := newEnv(t, envOptions{})
	for _, k := range []string{"local_content/a", "local_content/b", "local_thumbnails/x", "local_thumbnails/y", "remote_content/z"} {
		e.up.PutObject(upstreamBucket, "hs1/"+k, []byte(k))
	}
	tc := e.client(thumbKey, thumbSecret)
	var seen []string
	for _, delim := range []string{"", "/"} {
		var token *string
		for range 20 {
			in := &s3.ListObjectsV2Input{Bucket: aws.String("media"), MaxKeys: aws.Int32(1), ContinuationToken: token}
			if delim != "" {
				in.Delimiter = aws.String(delim)
			}
			page, err := tc.ListObjectsV2(ctx(t), in)
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range page.Contents {
				seen = append(seen, aws.ToString(o.Key))
			}
			for _, p := range page.CommonPrefixes {
				seen = append(seen, aws.ToString(p.Prefix))
			}
			if !aws.ToBool(page.IsTruncated) {
				break
			}
			dec, _ := base64.RawURLEncoding.DecodeString(aws.ToString(page.NextContinuationToken))
			if !strings.HasPrefix(string(dec), "local_thumbnails/") {
				t.Errorf("continuation token reveals %q", dec)
			}
			token = page.NextContinuationToken
		}
	}
	want := "local_thumbnails/x local_thumbnails/y local_thumbnails/"
	if got := strings.Join(seen, " "); got != want {
		t.Errorf("restricted listing saw %q, want %q", got, want)
	}
	page, err := tc.ListObjects(ctx(t), &s3.ListObjectsInput{Bucket: aws.String("media"), Prefix: aws.String("local_content/")})
	if err != nil || len(page.Contents) != 0 {
		t.Errorf("listing outside the grant = %+v, %v", page.Contents, err)
	}
}

// TestUnreadBodyIsCutOff: a client that announces a body and never sends it
// loses its connection after the stall timeout, without credentials.
func TestUnreadBodyIsCutOff(t *testing.T) {
	e := newEnv(t, envOptions{stall: 300 * time.Millisecond})
	conn, err := net.Dial("tcp", e.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /media/x HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n")
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(conn)
	for {
		if _, err := br.ReadString('\n'); err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatal("connection still open after 10s")
			}
			return // closed by the server
		}
	}
}

// TestConditionalWrite: If-None-Match: * refuses to overwrite.
func TestConditionalWrite(t *testing.T) {
	e := newEnv(t, envOptions{})
	c := e.client(fullKey, fullSecret)
	in := putInput("media", "lock", []byte("first"))
	in.IfNoneMatch = aws.String("*")
	if _, err := c.PutObject(ctx(t), in); err != nil {
		t.Fatal(err)
	}
	in = putInput("media", "lock", []byte("second"))
	in.IfNoneMatch = aws.String("*")
	if _, err := c.PutObject(ctx(t), in); apiCode(err) != "PreconditionFailed" {
		t.Errorf("second conditional PUT: %v, want PreconditionFailed", err)
	}
	if b, _, _ := e.upstreamObject("hs1/lock"); string(b) != "first" {
		t.Errorf("object = %q, want first", b)
	}
}

// TestSlowDownloadOutlivesStallTimeout: the stall timeout bounds a pause,
// not a whole response. A download that keeps moving but takes several
// stall timeouts completes, on the pass-through path and through a cache
// fill alike.
func TestSlowDownloadOutlivesStallTimeout(t *testing.T) {
	const stall = 300 * time.Millisecond
	data := randomBytes(192<<10, 7) // at 128 KiB/s: 1.5 s, five stall timeouts
	shape := upstreamtest.Shape{BytesPerSec: 128 << 10}
	for _, tc := range []struct {
		name string
		opts envOptions
	}{
		{"pass-through", envOptions{stall: stall, shape: shape}},
		{"cache fill", envOptions{stall: stall, shape: shape, cache: &cache.Options{MaxBytes: 64 << 20}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.opts)
			e.up.PutObject(upstreamBucket, "hs1/slow", data)
			start := time.Now()
			res, body, err := e.get("slow", nil)
			if err != nil {
				t.Fatalf("GET after %v: %v", time.Since(start), err)
			}
			if res.StatusCode != 200 || !bytes.Equal(body, data) {
				t.Fatalf("GET after %v: status %d, %d of %d bytes", time.Since(start), res.StatusCode, len(body), len(data))
			}
			if took := time.Since(start); took < 3*stall {
				t.Fatalf("download took %v: the shaping did not make it outlast the stall timeout", took)
			}
		})
	}
}

// slowReader hands out its bytes a piece at a time, pausing between pieces:
// a client on a slow but moving link.
type slowReader struct {
	data  []byte
	piece int
	pause time.Duration
}

func (r *slowReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	time.Sleep(r.pause)
	n := copy(p[:min(len(p), r.piece)], r.data)
	r.data = r.data[n:]
	return n, nil
}

// TestSlowUploadOutlivesStallTimeout: an upload whose body keeps moving,
// or whose upstream takes a while to acknowledge it, gets its answer even
// when the whole exchange lasts several stall timeouts.
func TestSlowUploadOutlivesStallTimeout(t *testing.T) {
	// Pauses of a sixth of the stall timeout: under load a pause of half
	// of it once came late enough to be taken for a stall.
	const stall = 600 * time.Millisecond
	data := randomBytes(64<<10, 8)
	for _, tc := range []struct {
		name  string
		shape upstreamtest.Shape
		body  func() io.Reader
	}{
		{"slow client", upstreamtest.Shape{}, func() io.Reader { return &slowReader{data: data, piece: 2 << 10, pause: stall / 6} }},
		{"slow upstream", upstreamtest.Shape{FirstByte: 4 * stall}, func() io.Reader { return bytes.NewReader(data) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, envOptions{stall: stall, shape: tc.shape})
			r := e.signed("PUT", "/media/slow-up", data, fullKey, fullSecret, time.Now(), "", nil)
			r.Body = io.NopCloser(tc.body())
			start := time.Now()
			if status, code := e.do(r); status != 200 {
				t.Fatalf("PUT after %v: %d %s", time.Since(start), status, code)
			}
			if took := time.Since(start); took < 3*stall {
				t.Fatalf("PUT took %v: it did not outlast the stall timeout", took)
			}
			if got, _, _ := e.upstreamObject("hs1/slow-up"); !bytes.Equal(got, data) {
				t.Fatalf("upstream holds %d bytes, want %d", len(got), len(data))
			}
		})
	}
}
