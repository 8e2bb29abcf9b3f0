package sigv4

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// emptySHA256 is hex(sha256("")), part of every chunk string to sign.
const emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// unreserved reports whether c is kept as is by AWS URI encoding
// (RFC 3986 unreserved: A-Z a-z 0-9 - . _ ~).
func unreserved(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

const upperHex = "0123456789ABCDEF"

// appendURIEncode appends s URI-encoded the AWS way: unreserved bytes kept,
// every other byte as %XX (upper-case), '/' kept only when keepSlash (paths).
func appendURIEncode(dst []byte, s string, keepSlash bool) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if unreserved(c) || c == '/' && keepSlash {
			dst = append(dst, c)
			continue
		}
		dst = append(dst, '%', upperHex[c>>4], upperHex[c&15])
	}
	return dst
}

// isCanonicalEncoded reports whether s already is its own AWS encoding: only
// unreserved bytes and %XX escapes (upper-case) of bytes that must be
// escaped. Such a string needs no decode/encode round trip, which saves the
// allocations on the common path.
func isCanonicalEncoded(s string, keepSlash bool) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case unreserved(c), c == '/' && keepSlash:
		case c == '%' && i+2 < len(s):
			hi, lo := strings.IndexByte(upperHex, s[i+1]), strings.IndexByte(upperHex, s[i+2])
			if hi < 0 || lo < 0 {
				return false
			}
			d := byte(hi<<4 | lo)
			if unreserved(d) || d == '/' && keepSlash {
				return false
			}
			i += 2
		default:
			return false
		}
	}
	return true
}

// appendCanonicalPath appends the canonical form of a decoded path: S3 encodes each
// segment once and never normalises ("//", "." and ".." stay).
func appendCanonicalPath(dst []byte, path string) []byte {
	if path == "" {
		return append(dst, '/')
	}
	return appendURIEncode(dst, path, true)
}

// param is one query parameter. key and value are in canonical (AWS
// encoded) form; raw is the value as sent, decoded on demand.
type param struct {
	key, value string
	rawValue   string
}

// decodedValue returns the parameter value with query decoding ('+' is a
// space), as url.ParseQuery and the AWS signers read it.
func (p param) decodedValue() (string, error) {
	v, err := url.QueryUnescape(p.rawValue)
	if err != nil {
		return "", fmt.Errorf("%w: query value: %v", ErrMalformedAuth, err)
	}
	return v, nil
}

// canonicalComponent returns the canonical encoding of a raw query key or
// value: decoded like url.ParseQuery does, then AWS encoded.
func canonicalComponent(raw string) (string, error) {
	if isCanonicalEncoded(raw, false) {
		return raw, nil
	}
	d, err := url.QueryUnescape(raw)
	if err != nil {
		return "", fmt.Errorf("%w: query: %v", ErrMalformedAuth, err)
	}
	return string(appendURIEncode(make([]byte, 0, len(d)+8), d, false)), nil
}

// parseQuery splits a raw query into canonical parameters, appending to dst.
// Empty pieces ("a&&b") are skipped, as url.ParseQuery does; ';' is an
// ordinary byte. A key without '=' has an empty value ("?uploads").
func parseQuery(raw string, dst []param) ([]param, error) {
	for raw != "" {
		var piece string
		piece, raw, _ = strings.Cut(raw, "&")
		if piece == "" {
			continue
		}
		k, v, _ := strings.Cut(piece, "=")
		key, err := canonicalComponent(k)
		if err != nil {
			return nil, err
		}
		value, err := canonicalComponent(v)
		if err != nil {
			return nil, err
		}
		dst = append(dst, param{key: key, value: value, rawValue: v})
	}
	return dst, nil
}

// appendCanonicalQuery sorts q by encoded key, then encoded value (SigV4
// sorts after encoding: "a/b" and "a-b" order differently once encoded) and
// appends it, leaving out X-Amz-Signature when presigned.
func appendCanonicalQuery(dst []byte, q []param, presigned bool) []byte {
	slices.SortFunc(q, func(a, b param) int {
		if c := strings.Compare(a.key, b.key); c != 0 {
			return c
		}
		return strings.Compare(a.value, b.value)
	})
	first := true
	for _, p := range q {
		if presigned && p.key == "X-Amz-Signature" {
			continue
		}
		if !first {
			dst = append(dst, '&')
		}
		first = false
		dst = append(dst, p.key...)
		dst = append(dst, '=')
		dst = append(dst, p.value...)
	}
	return dst
}

// headerValues returns the values of the lower-case header name without
// allocating: the server canonicalises keys, so the canonical form is tried
// first; a hand-built header map with odd keys is scanned.
func headerValues(h http.Header, name string) []string {
	var buf [64]byte
	if len(name) <= len(buf) {
		b := buf[:len(name)]
		upper := true
		for i := 0; i < len(name); i++ {
			c := name[i]
			if upper && 'a' <= c && c <= 'z' {
				c -= 'a' - 'A'
			}
			b[i] = c
			upper = c == '-'
		}
		if v, ok := h[string(b)]; ok {
			return v
		}
	}
	for k, v := range h {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return nil
}

// appendTrimmed appends v with leading and trailing whitespace removed and
// runs of spaces collapsed to one (the SigV4 "Trimall").
func appendTrimmed(dst []byte, v string) []byte {
	v = strings.TrimSpace(v)
	space := false
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c == ' ' {
			if space {
				continue
			}
			space = true
		} else {
			space = false
		}
		dst = append(dst, c)
	}
	return dst
}

// appendCanonicalHeaders appends "name:value\n" for every signed header.
// net/http moves Host, Content-Length and Transfer-Encoding out of r.Header
// on the server side, so those come from their fields when the map lacks
// them. An absent header canonicalises to "name:" as the signers do.
func appendCanonicalHeaders(dst []byte, r *http.Request, signed []string) []byte {
	for _, name := range signed {
		dst = append(dst, name...)
		dst = append(dst, ':')
		switch name {
		case "host":
			host := r.Host
			if host == "" && r.URL != nil {
				host = r.URL.Host
			}
			dst = appendTrimmed(dst, host)
			dst = append(dst, '\n')
			continue
		case "content-length":
			if v := headerValues(r.Header, name); len(v) == 0 && r.ContentLength >= 0 {
				dst = strconv.AppendInt(dst, r.ContentLength, 10)
				dst = append(dst, '\n')
				continue
			}
		case "transfer-encoding":
			if v := headerValues(r.Header, name); len(v) == 0 {
				dst = append(dst, strings.Join(r.TransferEncoding, ",")...)
				dst = append(dst, '\n')
				continue
			}
		}
		for i, v := range headerValues(r.Header, name) {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendTrimmed(dst, v)
		}
		dst = append(dst, '\n')
	}
	return dst
}

// canonicalInput is everything the canonical request is built from, already
// validated and in canonical form where it matters.
type canonicalInput struct {
	method        string
	path          []byte // canonical (encoded) URI
	query         []byte // canonical query string
	signedHeaders []string
	signedRaw     string // SignedHeaders exactly as sent
	payload       string // X-Amz-Content-Sha256 value or UNSIGNED-PAYLOAD
}

// appendCanonicalRequest appends the canonical request:
// method \n uri \n query \n headers \n signed-headers \n payload.
func appendCanonicalRequest(dst []byte, r *http.Request, in *canonicalInput) []byte {
	dst = append(dst, in.method...)
	dst = append(dst, '\n')
	dst = append(dst, in.path...)
	dst = append(dst, '\n')
	dst = append(dst, in.query...)
	dst = append(dst, '\n')
	dst = appendCanonicalHeaders(dst, r, in.signedHeaders)
	dst = append(dst, '\n')
	dst = append(dst, in.signedRaw...)
	dst = append(dst, '\n')
	return append(dst, in.payload...)
}

// appendStringToSign appends the request string to sign.
func appendStringToSign(dst []byte, amzDate, scope string, canonicalRequest []byte) []byte {
	sum := sha256.Sum256(canonicalRequest)
	dst = append(dst, algorithmHMAC+"\n"...)
	dst = append(dst, amzDate...)
	dst = append(dst, '\n')
	dst = append(dst, scope...)
	dst = append(dst, '\n')
	return hex.AppendEncode(dst, sum[:])
}

// hmacSHA256 is HMAC-SHA256 (RFC 2104) over stack buffers: crypto/hmac costs
// five allocations per call, and Verify makes one call per request (five on
// a signing-key cache miss). Tests check it against crypto/hmac.
func hmacSHA256(key, msg []byte) [32]byte {
	var k [sha256.BlockSize]byte
	if len(key) > len(k) {
		sum := sha256.Sum256(key)
		copy(k[:], sum[:])
	} else {
		copy(k[:], key)
	}
	var buf [sha256.BlockSize + 512]byte // fits every string to sign
	b := buf[:0]
	for _, c := range k {
		b = append(b, c^0x36)
	}
	inner := sha256.Sum256(append(b, msg...))
	b = buf[:0]
	for _, c := range k {
		b = append(b, c^0x5c)
	}
	return sha256.Sum256(append(b, inner[:]...))
}

// deriveSigningKey computes HMAC(HMAC(HMAC(HMAC("AWS4"+secret, date),
// region), service), "aws4_request").
func deriveSigningKey(secret, date, region, service string) [32]byte {
	k := hmacSHA256([]byte("AWS4"+secret), []byte(date))
	k = hmacSHA256(k[:], []byte(region))
	k = hmacSHA256(k[:], []byte(service))
	return hmacSHA256(k[:], []byte(scopeTerminal))
}
