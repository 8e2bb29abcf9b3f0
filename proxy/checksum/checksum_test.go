package checksum

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"hash/crc64"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"

	"github.com/minio/crc64nvme"
)

const check = "123456789"

// Check values: CRC catalogue (CRC-32/ISO-HDLC, CRC-32/ISCSI,
// CRC-64/NVME) and the usual digests of "123456789".
var checkValues = map[Algorithm]string{
	CRC32:     "cbf43926",
	CRC32C:    "e3069283",
	CRC64NVME: "ae8b14860a799888",
	SHA1:      "f7c3bc1d808e04732adf679965ccc34ca7ae3441",
	SHA256:    "15e2b0d3c33891ebb0f1ef609ec419420c20e320ce94c65fbc8c3312448eb225",
	MD5:       "25f9e794323b453885f5181f1b624d0b",
}

func TestCheckValues(t *testing.T) {
	for a, want := range checkValues {
		h := a.New()
		h.Write([]byte(check))
		if got := hex.EncodeToString(h.Sum(nil)); got != want {
			t.Errorf("%v: got %s, want %s", a, got, want)
		}
		if a.Size() != len(want)/2 || h.Size() != a.Size() {
			t.Errorf("%v: Size %d, hash size %d", a, a.Size(), h.Size())
		}
	}
}

func TestCRC64NVMEMatchesMinio(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	data := make([]byte, 100_000)
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	for range 200 {
		n := rng.IntN(len(data))
		h := newCRC64NVME()
		for p := data[:n]; len(p) > 0; { // split writes, odd sizes
			k := min(len(p), 1+rng.IntN(5000))
			h.Write(p[:k])
			p = p[k:]
		}
		if want := crc64nvme.Checksum(data[:n]); h.Sum64() != want {
			t.Fatalf("%d bytes: got %x, want %x", n, h.Sum64(), want)
		}
		if got := binary.BigEndian.Uint64(h.Sum(nil)); got != h.Sum64() {
			t.Fatal("Sum is not the big-endian Sum64")
		}
	}
	std := crc64.New(crc64NVME) // hash/crc64 with the same table agrees
	std.Write(data)
	if h := newCRC64NVME(); func() bool { h.Write(data); return h.Sum64() != std.Sum64() }() {
		t.Fatal("hash/crc64 with the NVME table disagrees")
	}
	if crc64nvme.Checksum([]byte(check)) != 0xAE8B14860A799888 {
		t.Fatal("minio/crc64nvme check value")
	}
}

func TestAlgorithmNames(t *testing.T) {
	for a := CRC32; a <= MD5; a++ {
		got, ok := ForHeader(strings.ToLower(a.Header()))
		if !ok || got != a {
			t.Errorf("ForHeader(%q) = %v, %v", a.Header(), got, ok)
		}
		if p, err := ParseAlgorithm(strings.ToLower(a.String())); a != MD5 && (err != nil || p != a) {
			t.Errorf("ParseAlgorithm(%q) = %v, %v", a, p, err)
		}
	}
	for _, bad := range []string{"MD5", "XXHASH64", "", "crc"} {
		if _, err := ParseAlgorithm(bad); !errors.Is(err, ErrInvalidDigest) {
			t.Errorf("ParseAlgorithm(%q): %v", bad, err)
		}
	}
	for _, name := range []string{"x-amz-checksum-algorithm", "x-amz-checksum-type", "x-amz-checksum-mode", "x-amz-checksum-", "etag"} {
		if a, ok := ForHeader(name); ok {
			t.Errorf("ForHeader(%q) = %v", name, a)
		}
	}
	if Algorithm(0).String() != "Algorithm(0)" || Algorithm(9).Size() != 0 || Algorithm(9).New() != nil {
		t.Error("invalid algorithm")
	}
}

func b64(a Algorithm, data string) string {
	h := a.New()
	h.Write([]byte(data))
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}

func TestFromHeader(t *testing.T) {
	cases := []struct {
		name   string
		header map[string][]string
		want   []Algorithm
		err    error
	}{
		{"none", map[string][]string{"Content-Type": {"a"}}, nil, nil},
		{"boto3 put", map[string][]string{"X-Amz-Sdk-Checksum-Algorithm": {"CRC32"}, "X-Amz-Checksum-Crc32": {b64(CRC32, check)}}, []Algorithm{CRC32}, nil},
		{"several", map[string][]string{
			"Content-Md5": {b64(MD5, check)}, "X-Amz-Checksum-Sha256": {b64(SHA256, check)},
			"X-Amz-Checksum-Crc64nvme": {b64(CRC64NVME, check)}, "X-Amz-Checksum-Crc32c": {b64(CRC32C, check)},
			"X-Amz-Checksum-Sha1": {b64(SHA1, check)}}, []Algorithm{CRC32C, CRC64NVME, SHA1, SHA256, MD5}, nil},
		{"non-canonical key", map[string][]string{"x-amz-checksum-crc32": {b64(CRC32, check)}}, []Algorithm{CRC32}, nil},
		{"value-less headers", map[string][]string{"X-Amz-Checksum-Algorithm": {"crc32c"}, "X-Amz-Checksum-Type": {"FULL_OBJECT"}, "X-Amz-Checksum-Mode": {"ENABLED"}}, nil, nil},
		{"not base64", map[string][]string{"X-Amz-Checksum-Crc32": {"!!!!!!=="}}, nil, ErrInvalidDigest},
		{"wrong length", map[string][]string{"X-Amz-Checksum-Crc32": {b64(SHA1, check)}}, nil, ErrInvalidDigest},
		{"md5 wrong length", map[string][]string{"Content-Md5": {"AAAA"}}, nil, ErrInvalidDigest},
		{"unpadded", map[string][]string{"X-Amz-Checksum-Crc32": {"yZRlqg"}}, nil, ErrInvalidDigest},
		{"non-canonical base64", map[string][]string{"X-Amz-Checksum-Crc32": {"yZRlqh=="}}, nil, ErrInvalidDigest},
		{"empty", map[string][]string{"X-Amz-Checksum-Sha256": {""}}, nil, ErrInvalidDigest},
		{"two values", map[string][]string{"X-Amz-Checksum-Crc32": {b64(CRC32, check), b64(CRC32, check)}}, nil, ErrInvalidDigest},
		{"same algorithm twice", map[string][]string{"X-Amz-Checksum-Crc32": {b64(CRC32, check)}, "x-amz-checksum-crc32": {b64(CRC32, check)}}, nil, ErrInvalidDigest},
		{"unsupported algorithm header", map[string][]string{"X-Amz-Checksum-Xxhash64": {"AAAAAAAAAAA="}}, nil, ErrInvalidDigest},
		{"unsupported sdk algorithm", map[string][]string{"X-Amz-Sdk-Checksum-Algorithm": {"XXHASH3"}}, nil, ErrInvalidDigest},
		{"unsupported create algorithm", map[string][]string{"X-Amz-Checksum-Algorithm": {"SHA512"}}, nil, ErrInvalidDigest},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := FromHeader(http.Header(c.header))
			if !errors.Is(err, c.err) || (err == nil) != (c.err == nil) {
				t.Fatalf("err %v, want %v", err, c.err)
			}
			if len(got) != len(c.want) {
				t.Fatalf("got %v, want %v", got, c.want)
			}
			for i, e := range got {
				if e.Algorithm != c.want[i] || Encode(e.Digest) != b64(e.Algorithm, check) {
					t.Errorf("got[%d] = %v %x", i, e.Algorithm, e.Digest)
				}
			}
		})
	}
}

func TestReader(t *testing.T) {
	data := strings.Repeat("0123456789", 10_000)
	hdr := func(kv ...string) []Expect {
		var h = http.Header{}
		for i := 0; i < len(kv); i += 2 {
			h.Set(kv[i], kv[i+1])
		}
		e, err := FromHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	trailer := func(kv ...string) func() http.Header {
		return func() http.Header {
			h := http.Header{}
			for i := 0; i < len(kv); i += 2 {
				h.Set(kv[i], kv[i+1])
			}
			return h
		}
	}
	cases := []struct {
		name string
		body string
		want []Expect
		opt  Options
		err  error
	}{
		{"nothing to check", data, nil, Options{}, nil},
		{"header crc32", data, hdr("X-Amz-Checksum-Crc32", b64(CRC32, data)), Options{}, nil},
		{"header md5 and sha256", data, hdr("Content-Md5", b64(MD5, data), "X-Amz-Checksum-Sha256", b64(SHA256, data)), Options{}, nil},
		{"header mismatch", data + "x", hdr("X-Amz-Checksum-Crc32", b64(CRC32, data)), Options{}, ErrBadDigest},
		{"md5 mismatch", data[1:], hdr("Content-Md5", b64(MD5, data)), Options{}, ErrBadDigest},
		{"trailer crc32", data, nil, Options{TrailerNames: []string{"x-amz-checksum-crc32"}, Trailer: trailer("x-amz-checksum-crc32", b64(CRC32, data))}, nil},
		{"trailer crc64nvme", data, nil, Options{TrailerNames: []string{"x-amz-checksum-crc64nvme"}, Trailer: trailer("X-Amz-Checksum-Crc64nvme", b64(CRC64NVME, data))}, nil},
		{"trailer mismatch", data, nil, Options{TrailerNames: []string{"x-amz-checksum-crc32c"}, Trailer: trailer("x-amz-checksum-crc32c", b64(CRC32C, "other"))}, ErrBadDigest},
		{"trailer missing", data, nil, Options{TrailerNames: []string{"x-amz-checksum-sha1"}, Trailer: trailer()}, ErrBadDigest},
		{"no trailer func", data, nil, Options{TrailerNames: []string{"x-amz-checksum-sha1"}}, ErrBadDigest},
		{"trailer not base64", data, nil, Options{TrailerNames: []string{"x-amz-checksum-crc32"}, Trailer: trailer("x-amz-checksum-crc32", "zz")}, ErrInvalidDigest},
		{"other trailers ignored", data, nil, Options{TrailerNames: []string{"x-amz-meta-a"}}, nil},
		{"header and trailer", data, hdr("Content-Md5", b64(MD5, data)), Options{TrailerNames: []string{"x-amz-checksum-crc32"}, Trailer: trailer("x-amz-checksum-crc32", b64(CRC32, data))}, nil},
		{"empty body", "", hdr("X-Amz-Checksum-Sha256", b64(SHA256, "")), Options{}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, n := range []int{1, 1000, 1 << 20} {
				r, err := NewReader(strings.NewReader(c.body), c.want, c.opt)
				if err != nil {
					t.Fatal(err)
				}
				got, err := readAll(r, n)
				if !errors.Is(err, c.err) || (err == nil) != (c.err == nil) {
					t.Fatalf("read size %d: err %v, want %v", n, err, c.err)
				}
				if len(got) != len(c.body) {
					t.Errorf("read %d bytes, want %d", len(got), len(c.body))
				}
				if _, again := r.Read(make([]byte, 8)); c.err != nil && again != err {
					t.Errorf("error not sticky: %v", again)
				}
			}
		})
	}
}

func readAll(r io.Reader, n int) ([]byte, error) {
	var out []byte
	buf := make([]byte, n)
	for {
		k, err := r.Read(buf)
		out = append(out, buf[:k]...)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
	}
}

func TestReaderSum(t *testing.T) {
	r, err := NewReader(strings.NewReader(check), nil, Options{Compute: []Algorithm{MD5, SHA256}})
	if err != nil {
		t.Fatal(err)
	}
	if r.Sum(MD5) != nil {
		t.Error("Sum before EOF")
	}
	if _, err := io.Copy(io.Discard, r); err != nil {
		t.Fatal(err)
	}
	for _, a := range []Algorithm{MD5, SHA256} {
		if got := hex.EncodeToString(r.Sum(a)); got != checkValues[a] {
			t.Errorf("%v: got %s", a, got)
		}
	}
	if r.Sum(CRC32) != nil {
		t.Error("Sum of a digest that was not computed")
	}
	r, _ = NewReader(strings.NewReader(check), []Expect{{SHA256, make([]byte, 32)}}, Options{Compute: []Algorithm{SHA256}})
	_, err = io.Copy(io.Discard, r)
	var me *MismatchError
	if !errors.As(err, &me) || me.Algorithm != SHA256 || me.Trailer || r.Sum(SHA256) != nil {
		t.Errorf("mismatch: %v, sum %x", err, r.Sum(SHA256))
	}
}

func TestNewReaderErrors(t *testing.T) {
	for _, c := range []struct {
		want []Expect
		opt  Options
	}{
		{[]Expect{{CRC32, []byte{1}}}, Options{}},
		{[]Expect{{0, nil}}, Options{}},
		{nil, Options{TrailerNames: []string{"x-amz-checksum-xxhash128"}}},
		{nil, Options{Compute: []Algorithm{42}}},
	} {
		if _, err := NewReader(bytes.NewReader(nil), c.want, c.opt); err == nil {
			t.Errorf("NewReader(%v, %+v) accepted", c.want, c.opt)
		}
	}
}

func FuzzFromHeader(f *testing.F) {
	f.Add("X-Amz-Checksum-Crc32", b64(CRC32, check), "CRC32")
	f.Add("Content-Md5", b64(MD5, check), "")
	f.Add("x-amz-checksum-crc64nvme", b64(CRC64NVME, check), "crc64nvme")
	f.Add("X-Amz-Checksum-Sha256", "", "sha1")
	f.Fuzz(func(t *testing.T, name, value, sdk string) {
		h := http.Header{name: {value}}
		if sdk != "" {
			h["X-Amz-Sdk-Checksum-Algorithm"] = []string{sdk}
		}
		got, err := FromHeader(h)
		if err != nil {
			if !errors.Is(err, ErrInvalidDigest) {
				t.Fatalf("error class: %v", err)
			}
			return
		}
		for _, e := range got {
			if len(e.Digest) != e.Algorithm.Size() {
				t.Fatalf("%v digest of %d bytes", e.Algorithm, len(e.Digest))
			}
			if Encode(e.Digest) != strings.TrimSpace(value) {
				t.Fatalf("value %q decoded to %x, re-encodes to %q", value, e.Digest, Encode(e.Digest))
			}
		}
	})
}
