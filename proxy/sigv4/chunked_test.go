package sigv4

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7/pkg/signer"
)

// The AWS "sigv4-streaming" and "sigv4-streaming-trailers" examples: 66560
// bytes of 'a' sent as 65536 + 1024 + 0, with the published signatures.
const (
	exampleSeed        = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
	exampleSeedTrailer = "106e2a8a18243abcf37539882f36619c00e2dfc72633413f02d3b74544bfeb8e"
	exampleScope       = "20130524/us-east-1/s3/aws4_request"
	exampleAmzDate     = "20130524T000000Z"
)

var (
	exampleChunkSigs        = [3]string{"ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648", "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497", "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9"}
	exampleTrailerChunkSigs = [3]string{"b474d8862b1487a5145d686f57f013e54db672cee1c953b3010fb58501ef5aa2", "1c1344b170168f8e65b41376b44b20fe354e373826ccbbe2c1d40a8cae51e5c7", "2ca2aba2005185cf7159c6277faf83795951dd77a3a99e6e65d5c9f85863f992"}
	exampleTrailerSig       = "d81f82fc3505edab99d459891051a732e8730629a2e4a59689829ca17fe2e435"
	exampleData             = bytes.Repeat([]byte("a"), 66560)
)

// exampleBody assembles the published wire body from the published
// signatures (not from encodeChunked), and the request that goes with it.
func exampleRequest(t testing.TB, trailer bool) (*http.Request, []byte) {
	sigs, seed, mode, signed := exampleChunkSigs, exampleSeed, streamingSigned,
		"content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class"
	if trailer {
		sigs, seed, mode = exampleTrailerChunkSigs, exampleSeedTrailer, streamingSignedTrailer
		signed = "content-encoding;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class;x-amz-trailer"
	}
	var body bytes.Buffer
	body.WriteString("10000;chunk-signature=" + sigs[0] + "\r\n" + strings.Repeat("a", 65536) + "\r\n")
	body.WriteString("400;chunk-signature=" + sigs[1] + "\r\n" + strings.Repeat("a", 1024) + "\r\n")
	body.WriteString("0;chunk-signature=" + sigs[2] + "\r\n")
	if trailer {
		body.WriteString("x-amz-checksum-crc32c:sOO8/Q==\r\nx-amz-trailer-signature:" + exampleTrailerSig + "\r\n\r\n")
	} else {
		body.WriteString("\r\n")
	}
	wire := "PUT /examplebucket/chunkObject.txt HTTP/1.1\r\nHost: s3.amazonaws.com\r\n" +
		"X-Amz-Date: 20130524T000000Z\r\nX-Amz-Storage-Class: REDUCED_REDUNDANCY\r\n" +
		"X-Amz-Content-Sha256: " + mode + "\r\nContent-Encoding: aws-chunked\r\n" +
		"X-Amz-Decoded-Content-Length: 66560\r\nContent-Length: " + strconv.Itoa(body.Len()) + "\r\n"
	if trailer {
		wire += "X-Amz-Trailer: x-amz-checksum-crc32c\r\n"
	}
	wire += "Authorization: AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/" + exampleScope +
		",SignedHeaders=" + signed + ",Signature=" + seed + "\r\n\r\n"
	return parseWire(t, wire+body.String()), body.Bytes()
}

func TestAWSStreamingExamples(t *testing.T) {
	for _, trailer := range []bool{false, true} {
		t.Run("trailer="+strconv.FormatBool(trailer), func(t *testing.T) {
			r, wire := exampleRequest(t, trailer)
			a, err := newTestVerifier(exampleTime).Verify(r)
			if err != nil {
				t.Fatalf("seed signature: %v", err)
			}
			if a.DecodedLength != 66560 || a.Payload.Streaming() != true {
				t.Fatalf("auth %+v", a)
			}
			for _, n := range []int{1, 7, 4096, 65536, 1 << 20} {
				body, err := a.Body(bytes.NewReader(wire))
				if err != nil {
					t.Fatal(err)
				}
				got, err := readAllSmall(body, n)
				if err != nil || !bytes.Equal(got, exampleData) {
					t.Fatalf("read size %d: %d bytes, %v", n, len(got), err)
				}
				tr := body.(*ChunkedReader).Trailer()
				if trailer && tr.Get("X-Amz-Checksum-Crc32c") != "sOO8/Q==" || !trailer && tr != nil {
					t.Errorf("trailer %v", tr)
				}
			}
			// Our encoder reproduces the published signatures byte for byte.
			spec := chunkSpec{signed: true, sizes: []int{65536}, seed: exampleSeed, amzDate: exampleAmzDate, scope: exampleScope,
				key: testSigningKey(testSecret, "20130524", testRegion)}
			if trailer {
				spec.seed, spec.trailers = exampleSeedTrailer, []string{"x-amz-checksum-crc32c:sOO8/Q=="}
			}
			if enc := encodeChunked(exampleData, spec); !bytes.Equal(enc, wire) {
				t.Errorf("encodeChunked differs from the AWS example")
			}
			// Any changed byte of data, signature or trailer fails.
			for _, off := range []int{200, 65536 + 300, len(wire) - 70, len(wire) - 90} {
				bad := bytes.Clone(wire)
				bad[off] ^= 1
				body, _ := a.Body(bytes.NewReader(bad))
				if _, err := io.ReadAll(body); err == nil {
					t.Errorf("flipped byte %d (%q): no error", off, wire[off])
				}
			}
		})
	}
}

// testAuth is an Auth for the example scope, as Verify would return it.
func testAuth(mode PayloadMode, decodedLen int64, trailers ...string) *Auth {
	seed, _ := decodeSignature(exampleSeed)
	return &Auth{Payload: mode, DecodedLength: decodedLen, Trailer: trailers, chain: &chain{
		key: deriveSigningKey(testSecret, "20130524", testRegion, "s3"), seed: seed,
		scope: exampleScope, amzDate: exampleAmzDate,
	}}
}

func testSpec(signed bool, sizes []int, trailers ...string) chunkSpec {
	return chunkSpec{signed: signed, sizes: sizes, trailers: trailers, seed: exampleSeed, amzDate: exampleAmzDate,
		scope: exampleScope, key: testSigningKey(testSecret, "20130524", testRegion)}
}

func TestChunkedRoundTrip(t *testing.T) {
	data := make([]byte, 200_003)
	for i := range data {
		data[i] = byte(i * 7)
	}
	for _, mode := range []PayloadMode{StreamingSigned, StreamingSignedTrailer, StreamingUnsignedTrailer} {
		for _, n := range []int{0, 1, 8192, 65536, len(data)} {
			for _, sizes := range [][]int{{65536, 65536, 65536}, {1, 2, 3}, {8192}} {
				var trailers []string
				var names []string
				if mode != StreamingSigned {
					trailers, names = []string{"x-amz-checksum-crc32:AAAAAA==", "x-amz-meta-x: y"}, []string{"x-amz-checksum-crc32", "x-amz-meta-x"}
				}
				wire := encodeChunked(data[:n], testSpec(mode != StreamingUnsignedTrailer, sizes, trailers...))
				for _, dl := range []int64{-1, int64(n)} {
					body, err := testAuth(mode, dl, names...).Body(bytes.NewReader(wire))
					if err != nil {
						t.Fatal(err)
					}
					got, err := readAllSmall(body, 1000)
					if err != nil || !bytes.Equal(got, data[:n]) {
						t.Fatalf("%v n=%d sizes=%v: %d bytes, %v", mode, n, sizes, len(got), err)
					}
					if tr := body.(*ChunkedReader).Trailer(); trailers != nil && (tr.Get("x-amz-checksum-crc32") != "AAAAAA==" || tr.Get("X-Amz-Meta-X") != "y") {
						t.Errorf("%v: trailer %v", mode, tr)
					}
				}
			}
		}
	}
}

func TestMinioGoStreaming(t *testing.T) {
	at := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	for _, n := range []int{0, 1, 65536, 65537, 300_001} {
		for _, withTrailer := range []bool{false, true} {
			data := bytes.Repeat([]byte("xyz"), n/3+1)[:n]
			req := newRequest(t, "PUT", "127.0.0.1:9000", "/b/obj", "", "", data)
			req.Header.Set("X-Amz-Meta-K", "v")
			if withTrailer {
				req.Trailer = http.Header{"X-Amz-Checksum-Crc32c": {"yZRlqg=="}}
			}
			req = signer.StreamingSignV4(req, testAKID, testSecret, "", testRegion, int64(n), at, sha256Hasher{sha256.New()})
			sr := toServer(t, req)
			a, err := newTestVerifier(at).Verify(sr)
			if err != nil {
				t.Fatalf("n=%d trailer=%v: %v", n, withTrailer, err)
			}
			want := StreamingSigned
			if withTrailer {
				want = StreamingSignedTrailer
			}
			if a.Payload != want || a.DecodedLength != int64(n) {
				t.Fatalf("auth %+v", a)
			}
			body, _ := a.Body(sr.Body)
			got, err := io.ReadAll(body)
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("n=%d trailer=%v: %d bytes, %v", n, withTrailer, len(got), err)
			}
			if tr := body.(*ChunkedReader).Trailer(); withTrailer && tr.Get("X-Amz-Checksum-Crc32c") != "yZRlqg==" {
				t.Errorf("trailer %v", tr)
			}
		}
	}
}

func TestMinioGoUnsignedTrailer(t *testing.T) {
	for _, n := range []int{0, 10, 65536, 150_000} {
		data := bytes.Repeat([]byte{'q'}, n)
		req := newRequest(t, "PUT", "127.0.0.1:9000", "/b/obj", "", "", data)
		req.Header.Set("X-Amz-Content-Sha256", streamingUnsignedTrailer)
		req = signer.SignV4Trailer(*req, testAKID, testSecret, "", testRegion, http.Header{"X-Amz-Checksum-Crc32": {"AAAAAA=="}})
		sr := toServer(t, req)
		a, err := newTestVerifier(time.Now()).Verify(sr)
		if err != nil {
			t.Fatalf("n=%d: %v", n, err)
		}
		body, _ := a.Body(sr.Body)
		got, err := io.ReadAll(body)
		if err != nil || !bytes.Equal(got, data) || a.Payload != StreamingUnsignedTrailer {
			t.Fatalf("n=%d: %d bytes, %v, %v", n, len(got), err, a.Payload)
		}
		if tr := body.(*ChunkedReader).Trailer(); tr.Get("X-Amz-Checksum-Crc32") != "AAAAAA==" {
			t.Errorf("trailer %v", tr)
		}
	}
}

func TestChunkedErrors(t *testing.T) {
	sig := strings.Repeat("0", 64)
	good := string(encodeChunked([]byte("hello world"), testSpec(true, []int{5})))
	goodTr := string(encodeChunked([]byte("hello"), testSpec(true, nil, "x-amz-checksum-crc32:AAAAAA==")))
	cases := []struct {
		name    string
		mode    PayloadMode
		decoded int64
		body    string
		want    error
	}{
		{"empty body", StreamingSigned, -1, "", ErrIncompleteBody},
		{"truncated header", StreamingSigned, -1, good[:10], ErrIncompleteBody},
		{"truncated data", StreamingSigned, -1, good[:90], ErrIncompleteBody},
		{"no final chunk", StreamingSigned, -1, good[:strings.LastIndex(good, "0;")], ErrIncompleteBody},
		{"no final crlf", StreamingSigned, -1, good[:len(good)-2], ErrIncompleteBody},
		{"data after final chunk", StreamingSigned, -1, good + "x", ErrMalformedChunk},
		{"size not hex", StreamingUnsignedTrailer, -1, "zz\r\n", ErrMalformedChunk},
		{"empty size", StreamingUnsignedTrailer, -1, "\r\n", ErrMalformedChunk},
		{"chunk too large", StreamingUnsignedTrailer, -1, "4000001\r\n", ErrMalformedChunk},
		{"size overflow", StreamingUnsignedTrailer, -1, "ffffffffffffffffffff\r\n", ErrMalformedChunk},
		{"bare LF header", StreamingUnsignedTrailer, -1, "5\nhello\r\n0\r\n\r\n", ErrMalformedChunk},
		{"no CRLF after data", StreamingUnsignedTrailer, -1, "5\r\nhelloXX0\r\n\r\n", ErrMalformedChunk},
		{"extension when unsigned", StreamingUnsignedTrailer, -1, "5;chunk-signature=" + sig + "\r\nhello\r\n0\r\n\r\n", ErrMalformedChunk},
		{"missing chunk signature", StreamingSigned, -1, "5\r\nhello\r\n", ErrMalformedChunk},
		{"upper-case chunk signature", StreamingSigned, -1, strings.ToUpper(good[:80]) + good[80:], ErrMalformedChunk},
		{"wrong chunk signature", StreamingSigned, -1, "5;chunk-signature=" + sig + "\r\nhello\r\n", ErrChunkSignatureMismatch},
		{"line too long", StreamingUnsignedTrailer, -1, strings.Repeat("0", 5000) + "\r\n", ErrMalformedChunk},
		{"longer than decoded", StreamingSigned, 4, good, ErrDecodedLengthMismatch},
		{"shorter than decoded", StreamingSigned, 12, good, ErrDecodedLengthMismatch},
		{"undeclared trailer", StreamingUnsignedTrailer, -1, "0\r\nx-amz-foo:1\r\n\r\n", ErrMalformedChunk},
		{"missing declared trailer", StreamingUnsignedTrailer, -1, "0\r\n\r\n", ErrMalformedChunk},
		{"duplicate trailer", StreamingUnsignedTrailer, -1, "0\r\nx-amz-checksum-crc32:A\r\nx-amz-checksum-crc32:A\r\n\r\n", ErrMalformedChunk},
		{"empty trailer value", StreamingUnsignedTrailer, -1, "0\r\nx-amz-checksum-crc32:\r\n\r\n", ErrMalformedChunk},
		{"trailer without colon", StreamingUnsignedTrailer, -1, "0\r\nx-amz-checksum-crc32\r\n\r\n", ErrMalformedChunk},
		{"trailer cut mid-line", StreamingUnsignedTrailer, -1, "0\r\nx-amz-checksum-crc32:AAA", ErrIncompleteBody},
		{"signature in unsigned trailer", StreamingUnsignedTrailer, -1, "0\r\nx-amz-checksum-crc32:A\r\nx-amz-trailer-signature:" + sig + "\r\n\r\n", ErrMalformedChunk},
		{"missing trailer signature", StreamingSignedTrailer, -1, goodTr[:strings.Index(goodTr, "x-amz-trailer-signature")], ErrChunkSignatureMismatch},
		{"trailer after signature", StreamingSignedTrailer, -1, strings.TrimSuffix(goodTr, "\r\n") + "x-amz-meta-a:b\r\n\r\n", ErrMalformedChunk},
		{"changed trailer", StreamingSignedTrailer, -1, strings.Replace(goodTr, "AAAAAA==", "AAAAAB==", 1), ErrChunkSignatureMismatch},
		{"trailer section too long", StreamingUnsignedTrailer, -1, "0\r\n" + strings.Repeat("\r\n", 9000), ErrMalformedChunk},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var names []string
			if c.mode != StreamingSigned {
				names = []string{"x-amz-checksum-crc32"}
			}
			body, err := testAuth(c.mode, c.decoded, names...).Body(strings.NewReader(c.body))
			if err != nil {
				t.Fatal(err)
			}
			_, err = io.ReadAll(body)
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
			if _, again := body.Read(make([]byte, 10)); again != err {
				t.Errorf("error not sticky: %v then %v", err, again)
			}
			if body.(*ChunkedReader).Trailer() != nil {
				t.Error("trailer exposed after an error")
			}
		})
	}
}

// A chunk may declare up to MaxChunkSize bytes; the decoder must not
// allocate for it.
func TestChunkedDeclaredSizeDoesNotAllocate(t *testing.T) {
	wire := []byte(strconv.FormatInt(MaxChunkSize, 16) + "\r\nshort")
	allocs := testing.AllocsPerRun(20, func() {
		body, _ := testAuth(StreamingUnsignedTrailer, -1).Body(bytes.NewReader(wire))
		if _, err := io.Copy(io.Discard, body); !errors.Is(err, ErrIncompleteBody) {
			t.Fatal(err)
		}
	})
	if allocs > 20 {
		t.Errorf("%v allocations", allocs)
	}
}

func TestSignedPayloadBody(t *testing.T) {
	data := []byte("Welcome to Amazon S3.")
	a := &Auth{Payload: PayloadSigned, PayloadHash: hexSHA256(data)}
	for _, c := range []struct {
		body []byte
		want error
	}{{data, nil}, {data[:5], ErrContentSHA256Mismatch}, {append(bytes.Clone(data), '!'), ErrContentSHA256Mismatch}} {
		body, err := a.Body(bytes.NewReader(c.body))
		if err != nil {
			t.Fatal(err)
		}
		got, err := readAllSmall(body, 4)
		if !errors.Is(err, c.want) || c.want == nil && !bytes.Equal(got, data) {
			t.Errorf("body %q: got %q, %v; want %v", c.body, got, err, c.want)
		}
	}
	if _, err := (&Auth{Payload: PayloadSigned, PayloadHash: "xyz"}).Body(nil); err == nil {
		t.Error("bad payload hash accepted")
	}
	if b, _ := (&Auth{Payload: PayloadUnsigned}).Body(nil); b == nil {
		t.Error("nil body not replaced")
	}
}
