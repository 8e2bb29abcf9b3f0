// Package checksum verifies the integrity values S3 clients attach to a
// payload: Content-MD5 and the flexible checksums x-amz-checksum-crc32,
// -crc32c, -crc64nvme, -sha1 and -sha256, sent as request headers or, with
// aws-chunked bodies, as trailers that arrive after the data.
//
// [FromHeader] collects what the headers promise; [NewReader] wraps the
// (already decoded) payload, computes every needed digest in one pass and,
// when the payload ends, compares them with the header values and with the
// trailer values, which only exist at that point. Like the sigv4 body
// readers it never returns io.EOF for a payload that does not match: a
// payload is good only once Read has returned io.EOF. It also exposes
// digests the caller asks for (MD5 for ETags, SHA-256 as a content hash).
//
// Values are base64 of the big-endian digest, as S3 sends them.
package checksum

import (
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"net/http"
	"slices"
	"strings"
)

// Errors, always wrapped with context; match them with errors.Is.
var (
	// ErrBadDigest: the payload does not match a checksum, or a declared
	// trailing checksum never came (S3: BadDigest).
	ErrBadDigest = errors.New("checksum: payload does not match its checksum")
	// ErrInvalidDigest: a checksum value is not base64 of the right length,
	// or names an algorithm this package does not support (S3:
	// InvalidDigest / InvalidRequest).
	ErrInvalidDigest = errors.New("checksum: invalid checksum value or algorithm")
)

// Algorithm is a payload checksum algorithm.
type Algorithm uint8

// Supported algorithms. The zero value is invalid.
const (
	CRC32     Algorithm = iota + 1 // IEEE
	CRC32C                         // Castagnoli
	CRC64NVME                      // CRC-64/NVME
	SHA1
	SHA256
	MD5 // Content-MD5 only
)

var algorithms = [...]struct {
	name   string // as in x-amz-sdk-checksum-algorithm
	header string // canonical header name
	size   int
	new    func() hash.Hash
}{
	CRC32:     {"CRC32", "X-Amz-Checksum-Crc32", crc32.Size, func() hash.Hash { return crc32.NewIEEE() }},
	CRC32C:    {"CRC32C", "X-Amz-Checksum-Crc32c", crc32.Size, func() hash.Hash { return crc32.New(castagnoli) }},
	CRC64NVME: {"CRC64NVME", "X-Amz-Checksum-Crc64nvme", 8, func() hash.Hash { return newCRC64NVME() }},
	SHA1:      {"SHA1", "X-Amz-Checksum-Sha1", sha1.Size, sha1.New},
	SHA256:    {"SHA256", "X-Amz-Checksum-Sha256", sha256.Size, sha256.New},
	MD5:       {"MD5", "Content-Md5", md5.Size, md5.New},
}

// castagnoli is the CRC-32C table; crc32 uses SSE4.2/ARMv8 instructions
// when given exactly this table.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func (a Algorithm) valid() bool { return a > 0 && int(a) < len(algorithms) }

// String returns the algorithm's S3 name ("CRC32", "SHA256", "MD5", ...).
func (a Algorithm) String() string {
	if !a.valid() {
		return fmt.Sprintf("Algorithm(%d)", uint8(a))
	}
	return algorithms[a].name
}

// Header returns the canonical header (and trailer) name carrying a value
// of this algorithm: "X-Amz-Checksum-Crc32", ..., "Content-Md5".
func (a Algorithm) Header() string {
	if !a.valid() {
		return ""
	}
	return algorithms[a].header
}

// Size returns the digest length in bytes.
func (a Algorithm) Size() int {
	if !a.valid() {
		return 0
	}
	return algorithms[a].size
}

// New returns a new hash computing the algorithm's digest.
func (a Algorithm) New() hash.Hash {
	if !a.valid() {
		return nil
	}
	return algorithms[a].new()
}

// ParseAlgorithm parses an x-amz-sdk-checksum-algorithm or
// x-amz-checksum-algorithm value ("CRC32", "crc64nvme", ...). MD5 is not a
// flexible checksum and is refused, like any unknown name, with
// ErrInvalidDigest.
func ParseAlgorithm(name string) (Algorithm, error) {
	for a := CRC32; a < MD5; a++ {
		if strings.EqualFold(name, algorithms[a].name) {
			return a, nil
		}
	}
	return 0, fmt.Errorf("%w: unsupported checksum algorithm %q", ErrInvalidDigest, truncate(name))
}

// headerPrefix starts every flexible checksum header name.
const headerPrefix = "x-amz-checksum-"

// ForHeader returns the algorithm whose value a header or trailer of this
// name carries (case-insensitive): Content-MD5 or x-amz-checksum-<name>.
func ForHeader(name string) (Algorithm, bool) {
	a, _ := classify(name)
	return a, a != 0
}

// classify is ForHeader that also reports, with a zero Algorithm, the
// x-amz-checksum-<name> headers meant to carry a value of an algorithm we do
// not support. The value-less x-amz-checksum-algorithm, -type and -mode are
// not checksums.
func classify(name string) (a Algorithm, isChecksum bool) {
	if strings.EqualFold(name, "content-md5") {
		return MD5, true
	}
	if len(name) <= len(headerPrefix) || !strings.EqualFold(name[:len(headerPrefix)], headerPrefix) {
		return 0, false
	}
	switch strings.ToLower(name[len(headerPrefix):]) {
	case "algorithm", "type", "mode":
		return 0, false
	}
	for a := CRC32; a < MD5; a++ {
		if strings.EqualFold(name, algorithms[a].header) {
			return a, true
		}
	}
	return 0, true
}

// Expect is a checksum the payload must match.
type Expect struct {
	Algorithm Algorithm
	Digest    []byte // raw digest, Algorithm.Size() bytes
}

// Decode parses a header or trailer value: base64 (standard, padded,
// canonical) of exactly a.Size() bytes.
func Decode(a Algorithm, value string) ([]byte, error) {
	if !a.valid() {
		return nil, fmt.Errorf("%w: algorithm %v", ErrInvalidDigest, a)
	}
	// Strict still skips CR and LF; requiring the canonical encoding back
	// makes one digest have exactly one accepted spelling.
	d, err := base64.StdEncoding.Strict().DecodeString(value)
	if err != nil || len(d) != a.Size() || Encode(d) != value {
		return nil, fmt.Errorf("%w: %s value %q is not base64 of %d bytes", ErrInvalidDigest, a, truncate(value), a.Size())
	}
	return d, nil
}

// Encode formats a digest as S3 sends it: standard base64.
func Encode(digest []byte) string { return base64.StdEncoding.EncodeToString(digest) }

// FromHeader collects the checksums a request's headers promise:
// Content-MD5 and every x-amz-checksum-<algorithm>. It also validates the
// algorithm named by x-amz-sdk-checksum-algorithm and
// x-amz-checksum-algorithm, so that a payload protected by an algorithm we
// cannot check is refused rather than passed on unverified. The result is
// ordered by algorithm; several algorithms may be present and all are
// checked. Errors wrap ErrInvalidDigest.
func FromHeader(h http.Header) ([]Expect, error) {
	var out []Expect
	for k, vals := range h {
		switch {
		case strings.EqualFold(k, "x-amz-sdk-checksum-algorithm"), strings.EqualFold(k, "x-amz-checksum-algorithm"):
			for _, v := range vals {
				if _, err := ParseAlgorithm(strings.TrimSpace(v)); err != nil {
					return nil, fmt.Errorf("checksum: %s: %w", strings.ToLower(k), err)
				}
			}
			continue
		}
		a, isChecksum := classify(k)
		if !isChecksum {
			continue
		}
		if a == 0 {
			return nil, fmt.Errorf("%w: unsupported checksum header %s", ErrInvalidDigest, truncate(strings.ToLower(k)))
		}
		if len(vals) != 1 {
			return nil, fmt.Errorf("%w: %d values for %s", ErrInvalidDigest, len(vals), a.Header())
		}
		d, err := Decode(a, strings.TrimSpace(vals[0]))
		if err != nil {
			return nil, err
		}
		if slices.ContainsFunc(out, func(e Expect) bool { return e.Algorithm == a }) {
			return nil, fmt.Errorf("%w: %s sent twice", ErrInvalidDigest, a.Header())
		}
		out = append(out, Expect{Algorithm: a, Digest: d})
	}
	slices.SortFunc(out, func(x, y Expect) int { return int(x.Algorithm) - int(y.Algorithm) })
	return out, nil
}

// MismatchError reports which checksum failed; it wraps ErrBadDigest.
// S3 names the algorithm in its message ("The CRC32 you specified did not
// match the calculated checksum").
type MismatchError struct {
	Algorithm Algorithm
	Trailer   bool // the value came from a trailer
	Missing   bool // a declared trailer never arrived
}

func (e *MismatchError) Error() string {
	switch {
	case e.Missing:
		return "checksum: declared trailer " + strings.ToLower(e.Algorithm.Header()) + " missing"
	case e.Trailer:
		return "checksum: payload does not match trailing " + e.Algorithm.String()
	}
	return "checksum: payload does not match " + e.Algorithm.String()
}

// Unwrap makes errors.Is(err, ErrBadDigest) true.
func (e *MismatchError) Unwrap() error { return ErrBadDigest }

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
