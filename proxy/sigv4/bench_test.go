package sigv4

import (
	"bytes"
	"io"
	"net/http"
	"slices"
	"testing"
	"time"
)

// benchRequest is what boto3 sends for an UploadPart: path-style key,
// partNumber/uploadId query, signed body hash, storage class.
func benchRequest(b *testing.B) *http.Request {
	at := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	r := newRequest(b, "PUT", "127.0.0.1:9000", "/media/local_content/ab/cd/efghijklmnop", "", "partNumber=1&uploadId=2~xYz_abc", []byte("x"))
	r.Header.Set("X-Amz-Storage-Class", "STANDARD")
	r.Header.Set("User-Agent", "Boto3/1.43.11 md/Botocore#1.43.11")
	r.Header.Set("Expect", "100-continue")
	sdkSign(b, r, hexSHA256([]byte("x")), at)
	return toServer(b, r)
}

func BenchmarkVerify(b *testing.B) {
	r := benchRequest(b)
	v := newTestVerifier(time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC))
	if _, err := v.Verify(r); err != nil { // fills the signing-key cache
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(r); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyPresigned(b *testing.B) {
	at := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	r := newRequest(b, "GET", "s3.example.com", "/media/local_content/ab/cd/efgh", "", "", nil)
	pr, err := http.NewRequest("GET", sdkPresign(b, r, time.Hour, at), nil)
	if err != nil {
		b.Fatal(err)
	}
	sr := toServer(b, pr)
	v := newTestVerifier(at)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(sr); err != nil {
			b.Fatal(err)
		}
	}
}

func benchBody(b *testing.B, mode PayloadMode, wire []byte, n int) {
	a := testAuth(mode, int64(n))
	if mode == PayloadSigned {
		a.PayloadHash = hexSHA256(wire)
	}
	buf := make([]byte, 32<<10)
	rd := bytes.NewReader(wire)
	b.SetBytes(int64(n))
	b.ReportAllocs()
	for b.Loop() {
		rd.Reset(wire)
		body, _ := a.Body(rd)
		if _, err := io.CopyBuffer(struct{ io.Writer }{io.Discard}, body, buf); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBody(b *testing.B) {
	data := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	b.Run("signed-payload", func(b *testing.B) { benchBody(b, PayloadSigned, data, len(data)) })
	b.Run("streaming-signed-64KiB", func(b *testing.B) {
		benchBody(b, StreamingSigned, encodeChunked(data, testSpec(true, slices.Repeat([]int{64 << 10}, 16))), len(data))
	})
	b.Run("streaming-unsigned-trailer-1MiB", func(b *testing.B) {
		benchBody(b, StreamingUnsignedTrailer, encodeChunked(data, testSpec(false, nil)), len(data))
	})
}
