package proxy_test

import (
	"io"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// BenchmarkPassThroughGet compares a GET through s3edge (no cache: every
// request goes to the upstream) with the same GET sent straight to the
// upstream, both with the same SDK client on loopback. It reports the median
// latency of each as p50-µs; the ratio is the cost of the proxy hop, SigV4
// verification included.
func BenchmarkPassThroughGet(b *testing.B) {
	for _, size := range []int{4 << 10, 4 << 20} {
		e := newEnv(b, envOptions{})
		data := randomBytes(size, 1)
		c := e.client(fullKey, fullSecret)
		if _, err := c.PutObject(b.Context(), putInput("media", "obj", data)); err != nil {
			b.Fatal(err)
		}
		direct := s3.New(s3.Options{
			BaseEndpoint: aws.String(e.up.URL), Region: "us-east-1", UsePathStyle: true,
			Credentials: credentials.NewStaticCredentialsProvider("x", "y", ""),
		})
		for _, tc := range []struct {
			name        string
			c           *s3.Client
			bucket, key string
		}{{"direct", direct, upstreamBucket, "hs1/obj"}, {"s3edge", c, "media", "obj"}} {
			b.Run(tc.name+"/"+sizeName(size), func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(size))
				var lat []time.Duration
				for b.Loop() {
					start := time.Now()
					out, err := tc.c.GetObject(b.Context(), &s3.GetObjectInput{Bucket: aws.String(tc.bucket), Key: aws.String(tc.key)})
					if err != nil {
						b.Fatal(err)
					}
					n, err := io.Copy(io.Discard, out.Body)
					out.Body.Close()
					if err != nil || n != int64(size) {
						b.Fatalf("read %d bytes, %v", n, err)
					}
					lat = append(lat, time.Since(start))
				}
				slices.Sort(lat)
				b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			})
		}
	}
}

func sizeName(n int) string {
	if n >= 1<<20 {
		return strconv.Itoa(n>>20) + "MiB"
	}
	return strconv.Itoa(n>>10) + "KiB"
}
