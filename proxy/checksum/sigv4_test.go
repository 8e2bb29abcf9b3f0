package checksum

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/s3edge/s3edge/proxy/sigv4"
)

// TestWithAWSChunkedTrailer wires the two packages as the proxy does for
// boto3's https uploads: STREAMING-UNSIGNED-PAYLOAD-TRAILER with a CRC32
// trailer, decoded by sigv4 and checked here at EOF.
func TestWithAWSChunkedTrailer(t *testing.T) {
	data := bytes.Repeat([]byte("synapse media "), 100_000)
	for _, value := range []string{b64(CRC32, string(data)), b64(CRC32, "tampered")} {
		var wire bytes.Buffer
		for p := data; len(p) > 0; {
			n := min(len(p), 1<<20)
			fmt.Fprintf(&wire, "%x\r\n%s\r\n", n, p[:n])
			p = p[n:]
		}
		fmt.Fprintf(&wire, "0\r\nx-amz-checksum-crc32:%s\r\n\r\n", value)

		auth := &sigv4.Auth{Payload: sigv4.StreamingUnsignedTrailer, DecodedLength: int64(len(data)), Trailer: []string{"x-amz-checksum-crc32"}}
		body, err := auth.Body(&wire)
		if err != nil {
			t.Fatal(err)
		}
		cr := body.(*sigv4.ChunkedReader)
		r, err := NewReader(cr, nil, Options{Trailer: cr.Trailer, TrailerNames: auth.Trailer, Compute: []Algorithm{SHA256}})
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(r)
		good := value == b64(CRC32, string(data))
		if good && (err != nil || !bytes.Equal(got, data) || r.Sum(SHA256) == nil) {
			t.Fatalf("good trailer: %d bytes, %v", len(got), err)
		}
		if !good && !errors.Is(err, ErrBadDigest) {
			t.Fatalf("tampered trailer: %v", err)
		}
	}
}
