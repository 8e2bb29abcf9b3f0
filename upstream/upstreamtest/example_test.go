package upstreamtest_test

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/s3edge/s3edge/upstream"
	"github.com/s3edge/s3edge/upstream/upstreamtest"
)

// A distant provider: 20 ms to the first byte, 50 MiB/s, and a connection
// reset in the middle of the first GET.
func ExampleNewServer() {
	srv := upstreamtest.NewServer(upstreamtest.Shape{
		FirstByte:   20 * time.Millisecond,
		BytesPerSec: 50 << 20,
		Fail:        upstreamtest.FailFirst(1, "GetObject", upstreamtest.ResetAfter(1000)),
	}, "media")
	defer srv.Close()
	srv.PutObject("media", "local_content/ab/cd/rest", make([]byte, 4096))

	ctx := context.Background()
	c := srv.Client()
	for range 2 {
		obj, err := c.Get(ctx, "media", "local_content/ab/cd/rest", upstream.GetOptions{})
		if err != nil {
			fmt.Println("get:", err)
			continue
		}
		n, err := io.Copy(io.Discard, obj.Body)
		obj.Body.Close()
		fmt.Printf("read %d bytes, error: %t\n", n, err != nil)
	}
	fmt.Println("GETs:", srv.Requests("GetObject"), "bytes sent:", srv.BytesSent(), "aws-chunked uploads:", srv.ChunkedRequests())
	// Output:
	// read 1000 bytes, error: true
	// read 4096 bytes, error: false
	// GETs: 2 bytes sent: 5096 aws-chunked uploads: 0
}
