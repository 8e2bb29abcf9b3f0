package upstream_test

import (
	"context"
	"io"
	"net/http"
	"testing"

	"github.com/s3edge/s3edge/upstream"
	"github.com/s3edge/s3edge/upstream/upstreamtest"
)

// BenchmarkGetHeader: the client's cost of a GET up to its response header
// (the fixed cost a cache miss adds to the upstream's own time to first
// byte), against a plain unsigned GET of the same object.
func BenchmarkGetHeader(b *testing.B) {
	srv := upstreamtest.NewServer(upstreamtest.Shape{}, bucket)
	defer srv.Close()
	srv.PutObject(bucket, "k", make([]byte, 1024))
	c := srv.Client()
	ctx := context.Background()
	b.Run("sdk", func(b *testing.B) {
		for b.Loop() {
			obj, err := c.Get(ctx, bucket, "k", upstream.GetOptions{})
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, obj.Body)
			obj.Body.Close()
		}
	})
	b.Run("plain", func(b *testing.B) {
		u := srv.Config().Endpoint + "/" + bucket + "/k"
		for b.Loop() {
			res, err := http.Get(u)
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
		}
	})
}
