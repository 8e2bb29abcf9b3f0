package cache_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync/atomic"

	"github.com/s3edge/s3edge/cache"
)

func Example() {
	dir, _ := os.MkdirTemp("", "cache-example")
	defer os.RemoveAll(dir)
	c, err := cache.Open(dir, cache.Options{MaxBytes: 1 << 30})
	if err != nil {
		panic(err)
	}
	defer c.Close()

	// The proxy builds the fetcher around its upstream call.
	var fetches atomic.Int64
	fetch := cache.FetchFunc(func(ctx context.Context, k cache.Key) (cache.Meta, io.ReadCloser, error) {
		fetches.Add(1)
		body := "thumbnail bytes"
		return cache.Meta{Size: int64(len(body)), ETag: `"abc"`, ContentType: "image/jpeg"},
			io.NopCloser(strings.NewReader(body)), nil
	})
	k := cache.Key{Bucket: "media", Object: "local_thumbnails/ab/cd/x"}
	for range 3 {
		r, _, err := c.Get(context.Background(), k, fetch, cache.GetOptions{})
		if err != nil {
			panic(err) // before any byte: the proxy answers with an S3 error
		}
		// The proxy writes headers from r.Meta(), then io.Copy(w, r):
		// sendfile on a hit. A read error means: abort the response.
		body, err := io.ReadAll(r)
		r.Close()
		if err != nil {
			panic(err)
		}
		fmt.Println(r.Meta().ContentType, string(body))
	}
	fmt.Println("fetches:", fetches.Load())
	// Output:
	// image/jpeg thumbnail bytes
	// image/jpeg thumbnail bytes
	// image/jpeg thumbnail bytes
	// fetches: 1
}

func ExampleCache_Stage() {
	dir, _ := os.MkdirTemp("", "cache-example")
	defer os.RemoveAll(dir)
	c, _ := cache.Open(dir, cache.Options{MaxBytes: 1 << 30})
	defer c.Close()

	k := cache.Key{Bucket: "media", Object: "local_content/new"}
	body := []byte("uploaded bytes")
	c.Invalidate(k) // a write: no older fill or upload may store over it
	p, err := c.Stage(k, int64(len(body)))
	if err != nil {
		return // spool elsewhere; do not cache
	}
	p.Write(body) // the verified request body
	// upload io.NewSectionReader(p, 0, p.Size()) to the upstream, then:
	p.Commit(cache.Meta{Size: int64(len(body)), ETag: `"from-upstream"`})

	r, status, _ := c.Get(context.Background(), k, nil, cache.GetOptions{})
	got, _ := io.ReadAll(r)
	r.Close()
	fmt.Println(status, string(got))
	// Output: HIT uploaded bytes
}
