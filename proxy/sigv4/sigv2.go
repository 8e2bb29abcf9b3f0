package sigv4

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Signature Version 2 is still what boto3's generate_presigned_url, the aws
// CLI v1's "s3 presign" and s3cmd's signurl produce against a custom
// endpoint (?AWSAccessKeyId=…&Expires=…&Signature=…), and what s3cmd signs
// with when told signature_v2. S3 keeps accepting it, so the proxy does: an
// HMAC-SHA1 over the method, Content-MD5, Content-Type, the date (or the
// expiry), every x-amz-* header and the resource. The payload is not signed
// unless an x-amz-content-sha256 header (then signed as an x-amz-* header)
// says what it hashes to.

// v2SubResources are the query parameters that belong to the resource in
// the string to sign; the others (x-id, prefix, ...) are not signed. The list
// is botocore's, which matches S3's.
var v2SubResources = []string{
	"accelerate", "acl", "analytics", "cors", "defaultObjectAcl", "delete",
	"inventory", "lifecycle", "location", "logging", "metrics", "notification",
	"object-lock", "partNumber", "policy", "replication", "requestPayment",
	"response-cache-control", "response-content-disposition",
	"response-content-encoding", "response-content-language",
	"response-content-type", "response-expires", "restore", "select",
	"select-type", "storageClass", "tagging", "torrent", "uploadId",
	"uploads", "versionId", "versioning", "versions", "website",
}

// v2Unsigned are the query parameters V2 does not sign that s3edge still
// accepts under it: they page or shape a listing the signer's grants bound
// anyway, carry the signature itself, or (content-type, content-md5,
// x-amz-*: where botocore's presigner copies the headers it signs) are read
// by no handler. Any other parameter outside v2SubResources (attributes,
// retention, publicAccessBlock, ...) could select an operation unsigned, so
// a V2 request carrying one is refused: S3 wants SigV4 for those too.
var v2Unsigned = []string{
	"AWSAccessKeyId", "Signature", "Expires",
	"prefix", "delimiter", "marker", "max-keys", "list-type", "start-after",
	"continuation-token", "fetch-owner", "encoding-type", "key-marker",
	"upload-id-marker", "version-id-marker", "max-uploads", "max-parts",
	"part-number-marker", "x-id", "content-type", "content-md5",
}

// v2Params splits a raw query the way the proxy's handlers read it (names
// and values query-decoded, '+' a space, ';' an ordinary byte), so that
// what is signed is what is acted on. It refuses a parameter V2 leaves
// unsigned that could change the operation.
func v2Params(raw string) ([][2]string, error) {
	var sub [][2]string
	for seg := range strings.SplitSeq(raw, "&") {
		if seg == "" {
			continue
		}
		k, val, eq := strings.Cut(seg, "=")
		var err error
		if k, err = url.QueryUnescape(k); err != nil {
			return nil, fmt.Errorf("%w: query parameter name: %v", ErrMalformedAuth, err)
		}
		if val, err = url.QueryUnescape(val); err != nil {
			return nil, fmt.Errorf("%w: query parameter %s: %v", ErrMalformedAuth, truncate(k), err)
		}
		switch {
		case slices.Contains(v2SubResources, k):
			if eq {
				sub = append(sub, [2]string{k, "=" + val})
			} else {
				sub = append(sub, [2]string{k, ""})
			}
		case slices.Contains(v2Unsigned, k), len(k) >= 6 && strings.EqualFold(k[:6], "x-amz-"):
		default:
			return nil, fmt.Errorf("%w: query parameter %q is not covered by signature version 2; sign with SigV4", ErrUnsupported, truncate(k))
		}
	}
	slices.SortStableFunc(sub, func(a, b [2]string) int { return strings.Compare(a[0], b[0]) })
	return sub, nil
}

// verifyV2Header verifies "Authorization: AWS AKID:base64(signature)", dated
// by X-Amz-Date or Date.
func (v *Verifier) verifyV2Header(r *http.Request, authz string) (*Auth, error) {
	id, sig, err := parseV2Credential(strings.TrimPrefix(strings.TrimLeft(authz, " "), "AWS "))
	if err != nil {
		return nil, err
	}
	date := r.Header.Get("Date")
	if x := r.Header.Get("X-Amz-Date"); x != "" {
		date = x
	}
	t, ok := parseV2Date(date)
	if !ok {
		return nil, fmt.Errorf("%w: signature version 2 needs a Date or X-Amz-Date", ErrMalformedAuth)
	}
	if d := v.now().Sub(t); d > v.maxSkew() || d < -v.maxSkew() {
		return nil, fmt.Errorf("%w: request time %s, now %s", ErrTimeSkewed, t.UTC().Format(time.RFC3339), v.now().UTC().Format(time.RFC3339))
	}
	if r.Header.Get("X-Amz-Date") != "" {
		date = "" // signed among the x-amz-* headers instead
	}
	return v.checkV2(r, id, sig, date, t, false)
}

// parseV2Date reads the dates V2 signers send: HTTP's forms, RFC 1123 with
// a numeric zone (S3's own examples) and ISO 8601 basic.
func parseV2Date(s string) (time.Time, bool) {
	if t, err := http.ParseTime(s); err == nil {
		return t, true
	}
	if t, err := time.Parse(time.RFC1123Z, s); err == nil {
		return t, true
	}
	return parseBasic(s)
}

// verifyV2Query verifies a presigned URL of signature version 2. Its expiry
// is bounded like X-Amz-Expires: a URL that would live longer than
// MaxPresignExpiry from now is refused.
func (v *Verifier) verifyV2Query(r *http.Request, q []param) (*Auth, error) {
	var id, sig, expires string
	for _, p := range q {
		var dst *string
		switch p.key {
		case "AWSAccessKeyId":
			dst = &id
		case "Signature":
			dst = &sig
		case "Expires":
			dst = &expires
		default:
			continue
		}
		if *dst != "" {
			return nil, fmt.Errorf("%w: duplicate %s", ErrMalformedAuth, p.key)
		}
		// Path-unescaped: a '+' the client left in the base64 signature
		// stays a '+' instead of becoming a space.
		val, err := url.PathUnescape(p.rawValue)
		if err != nil || val == "" {
			return nil, fmt.Errorf("%w: query parameter %s", ErrMalformedAuth, p.key)
		}
		*dst = val
	}
	id, signature, err := parseV2Credential(id + ":" + sig)
	if err != nil {
		return nil, err
	}
	exp, err := strconv.ParseInt(expires, 10, 64)
	if err != nil || exp < 0 {
		return nil, fmt.Errorf("%w: Expires must be seconds since the epoch", ErrMalformedAuth)
	}
	now := v.now().Unix()
	switch {
	case now >= exp:
		return nil, fmt.Errorf("%w: expired at %d, now %d", ErrExpired, exp, now)
	case exp-now > int64(v.maxExpiry()/time.Second):
		return nil, fmt.Errorf("%w: Expires is more than %s away", ErrMalformedAuth, v.maxExpiry())
	}
	return v.checkV2(r, id, signature, expires, time.Time{}, true)
}

// parseV2Credential splits "AKID:base64(signature)".
func parseV2Credential(s string) (id string, sig [sha1.Size]byte, err error) {
	id, b64, ok := strings.Cut(s, ":")
	if !ok || id == "" {
		return "", sig, fmt.Errorf("%w: signature version 2 credential is not AKID:signature", ErrMalformedAuth)
	}
	// Decode wants room for DecodedLen bytes, one more than a SHA-1: a
	// smaller buffer makes it panic on a 28-character input.
	var buf [sha1.Size + 1]byte
	if len(b64) != base64.StdEncoding.EncodedLen(sha1.Size) {
		return "", sig, fmt.Errorf("%w: signature version 2 signature is not base64 of 20 bytes", ErrMalformedAuth)
	}
	n, err := base64.StdEncoding.Strict().Decode(buf[:], []byte(b64)) // one spelling per signature
	copy(sig[:], buf[:])
	if err != nil || n != len(sig) {
		return "", sig, fmt.Errorf("%w: signature version 2 signature is not base64 of 20 bytes", ErrMalformedAuth)
	}
	return id, sig, nil
}

// checkV2 computes the string to sign and compares signatures in constant
// time. date is the Date header's value, the expiry of a presigned URL, or
// empty when X-Amz-Date dates the request; t is the request time, zero for
// a presigned URL, which has none.
func (v *Verifier) checkV2(r *http.Request, id string, sig [sha1.Size]byte, date string, t time.Time, presigned bool) (*Auth, error) {
	// Nothing checks aws-chunked framing under V2: it would be stored as
	// the object's bytes.
	if strings.Contains(strings.ToLower(strings.Join(r.Header.Values("Content-Encoding"), ",")), "aws-chunked") ||
		r.Header.Get("X-Amz-Decoded-Content-Length") != "" || r.Header.Get("X-Amz-Trailer") != "" {
		return nil, fmt.Errorf("%w: aws-chunked payload with signature version 2", ErrUnsupported)
	}
	sub, err := v2Params(r.URL.RawQuery)
	if err != nil {
		return nil, err
	}
	mode, hash := PayloadUnsigned, ""
	if h := r.Header.Values("X-Amz-Content-Sha256"); len(h) > 0 {
		m, err := parsePayload(h[0])
		switch {
		case err != nil:
			return nil, err
		case len(h) > 1:
			return nil, fmt.Errorf("%w: several X-Amz-Content-Sha256 headers", ErrMalformedAuth)
		case m.Streaming():
			return nil, fmt.Errorf("%w: aws-chunked payload with signature version 2", ErrUnsupported)
		}
		mode = m
		if m == PayloadSigned {
			hash = strings.ToLower(h[0])
		}
	}
	secret, err := v.Secret(id)
	if err != nil {
		return nil, fmt.Errorf("sigv4: access key: %w", err)
	}
	// The bucket alone is signed as "/bucket" by some signers and as
	// "/bucket/" by botocore; both name the same resource.
	path := v2Path(r, v.HostBucket)
	sts, signed := stringToSignV2(r, date, path, sub)
	if !v2SignatureOK(secret, sts, &sig) {
		mismatch := &SignatureError{StringToSign: sts}
		if len(path) < 2 || strings.Count(path, "/") != 1 {
			return nil, mismatch
		}
		if sts, _ = stringToSignV2(r, date, path+"/", sub); !v2SignatureOK(secret, sts, &sig) {
			return nil, mismatch
		}
	}
	return &Auth{
		AccessKeyID:   id,
		Service:       "s3",
		Date:          t,
		Presigned:     presigned,
		SignedHeaders: signed,
		Payload:       mode,
		PayloadHash:   hash,
		DecodedLength: -1,
	}, nil
}

// v2Path is the request path as sent, after "/bucket" for a virtual-host
// style request.
func v2Path(r *http.Request, hostBucket func(string) (string, bool)) string {
	if hostBucket != nil {
		if bucket, ok := hostBucket(r.Host); ok {
			return "/" + bucket + wirePath(r)
		}
	}
	return wirePath(r)
}

func v2SignatureOK(secret, sts string, sig *[sha1.Size]byte) bool {
	mac := hmac.New(sha1.New, []byte(secret))
	mac.Write([]byte(sts))
	return subtle.ConstantTimeCompare(mac.Sum(nil), sig[:]) == 1
}

// stringToSignV2 returns
//
//	method \n content-md5 \n content-type \n date \n x-amz-headers path ?subresources
//
// and the names of the headers it covers.
func stringToSignV2(r *http.Request, date, path string, sub [][2]string) (string, []string) {
	var b strings.Builder
	b.WriteString(r.Method)
	b.WriteByte('\n')
	b.WriteString(r.Header.Get("Content-Md5"))
	b.WriteByte('\n')
	b.WriteString(r.Header.Get("Content-Type"))
	b.WriteByte('\n')
	b.WriteString(date)
	b.WriteByte('\n')
	signed := []string{"content-md5", "content-type", "date"}
	var amz []string
	for k := range r.Header {
		if len(k) >= 6 && strings.EqualFold(k[:6], "x-amz-") {
			amz = append(amz, k)
		}
	}
	slices.SortFunc(amz, func(a, b string) int { return strings.Compare(strings.ToLower(a), strings.ToLower(b)) })
	for _, k := range amz {
		lk := strings.ToLower(k)
		signed = append(signed, lk)
		b.WriteString(lk)
		b.WriteByte(':')
		for i, val := range r.Header[k] {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strings.TrimSpace(val))
		}
		b.WriteByte('\n')
	}
	b.WriteString(path)
	for i, p := range sub {
		if i == 0 {
			b.WriteByte('?')
		} else {
			b.WriteByte('&')
		}
		b.WriteString(p[0])
		b.WriteString(p[1])
	}
	return b.String(), signed
}
