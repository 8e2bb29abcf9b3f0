package proxy

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/s3edge/s3edge/upstream"
)

const metaPrefix = "X-Amz-Meta-"

// maxUserMetadata is S3's limit on the size of x-amz-meta-* headers.
const maxUserMetadata = 2 << 10

// storedHeaders are the request headers of a PUT that describe the object and
// are stored with it upstream.
//
// Headers that act on the provider account (tags that drive lifecycle or
// access rules, KMS key IDs, website redirects, ACLs) are not passed on: a
// tenant of s3edge must not steer the operator's account.
var storedHeaders = []string{
	"Cache-Control", "Content-Disposition", "Content-Encoding", "Content-Language", "Expires",
}

// objectHeadersIn collects the representation headers of a write request.
// aws-chunked is a transfer detail of the request, not part of the object's
// Content-Encoding, so it is removed.
func objectHeadersIn(h http.Header) (map[string]string, error) {
	out := make(map[string]string)
	meta := 0
	for name, vs := range h {
		if len(vs) == 0 {
			continue
		}
		if strings.HasPrefix(name, metaPrefix) {
			meta += len(name) - len(metaPrefix) + len(vs[0])
			out[name] = vs[0]
		}
	}
	if meta > maxUserMetadata {
		return nil, errMetadataTooLarge
	}
	for _, name := range storedHeaders {
		if v := h.Get(name); v != "" {
			out[name] = v
		}
	}
	if h.Get("X-Amz-Server-Side-Encryption") == "AES256" {
		out["X-Amz-Server-Side-Encryption"] = "AES256"
	}
	if ce, ok := out["Content-Encoding"]; ok {
		if ce = stripAWSChunked(ce); ce == "" {
			delete(out, "Content-Encoding")
		} else {
			out["Content-Encoding"] = ce
		}
	}
	return out, nil
}

func stripAWSChunked(ce string) string {
	var keep []string
	for _, p := range strings.Split(ce, ",") {
		if p = strings.TrimSpace(p); p != "" && !strings.EqualFold(p, "aws-chunked") {
			keep = append(keep, p)
		}
	}
	return strings.Join(keep, ",")
}

// sseC reads the SSE-C headers of a request; copySource selects the
// x-amz-copy-source-* variant.
func sseC(h http.Header, copySource bool) upstream.SSEC {
	n := &sseCHeaders[0]
	if copySource {
		n = &sseCHeaders[1]
	}
	return upstream.SSEC{Algorithm: header(h, n[0]), Key: header(h, n[1]), KeyMD5: header(h, n[2])}
}

// header is h.Get for a name already in canonical form. Get canonicalises
// its argument, a byte-by-byte validation of names as long as SSE-C's:
// 2% of a small hit's CPU, for names that are constants.
func header(h http.Header, canonical string) string {
	if v := h[canonical]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// sseCHeaders are the SSE-C header names, in canonical form, of an object
// and of a copy source: built once, not per request (this runs on every GET).
var sseCHeaders = [2][3]string{
	{
		"X-Amz-Server-Side-Encryption-Customer-Algorithm",
		"X-Amz-Server-Side-Encryption-Customer-Key",
		"X-Amz-Server-Side-Encryption-Customer-Key-Md5",
	},
	{
		"X-Amz-Copy-Source-Server-Side-Encryption-Customer-Algorithm",
		"X-Amz-Copy-Source-Server-Side-Encryption-Customer-Key",
		"X-Amz-Copy-Source-Server-Side-Encryption-Customer-Key-Md5",
	},
}

// setObjectHeaders writes an object's metadata as response headers.
func setObjectHeaders(h http.Header, info *upstream.ObjectInfo) {
	hs := headerSetter{h: h, vals: make([]string, 0, len(info.Header)+6)}
	for k, v := range info.Header {
		switch {
		case k == "X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id":
			// A KMS key ID names the provider account: not the
			// client's business.
		case len(k) > len(metaPrefix) && strings.EqualFold(k[:len(metaPrefix)], metaPrefix):
			// S3 sends user metadata names in lower case and SDKs
			// hand them to users as they arrive: bypass Go's
			// canonical form.
			hs.set(strings.ToLower(k), v)
		default:
			hs.set(http.CanonicalHeaderKey(k), v)
		}
	}
	ct := info.ContentType
	if ct == "" {
		ct = "binary/octet-stream"
	}
	hs.set("Content-Type", ct)
	if info.ETag != "" {
		hs.set("Etag", info.ETag)
	}
	if !info.LastModified.IsZero() {
		hs.set("Last-Modified", info.LastModified.UTC().Format(http.TimeFormat))
	}
	if info.StorageClass != "" && info.StorageClass != "STANDARD" {
		hs.set("X-Amz-Storage-Class", info.StorageClass)
	} else {
		delete(h, "X-Amz-Storage-Class")
	}
	if info.VersionID != "" && info.VersionID != "null" {
		hs.set("X-Amz-Version-Id", info.VersionID)
	}
	if info.PartsCount > 0 {
		// Clients that download multipart objects part by part (the
		// partNumber of GetObject and HeadObject) learn the count here.
		hs.set("X-Amz-Mp-Parts-Count", strconv.Itoa(int(info.PartsCount)))
	}
	h["Accept-Ranges"] = acceptRangesBytes
}

// headerSetter sets header values from one backing array: on a cache hit,
// one allocation instead of one per header. Keys must be canonical.
type headerSetter struct {
	h    http.Header
	vals []string
}

func (s *headerSetter) set(k, v string) {
	s.vals = append(s.vals, v)
	n := len(s.vals)
	s.h[k] = s.vals[n-1 : n : n] // capacity 1: an Add copies, never overwrites a neighbour
}

// acceptRangesBytes is shared by every response; its capacity of 1 keeps an
// Add from writing into it.
var acceptRangesBytes = []string{"bytes"}

// responseOverrides are the query parameters of GetObject that replace
// response headers.
var responseOverrides = [][2]string{
	{"response-content-type", "Content-Type"},
	{"response-content-language", "Content-Language"},
	{"response-expires", "Expires"},
	{"response-cache-control", "Cache-Control"},
	{"response-content-disposition", "Content-Disposition"},
	{"response-content-encoding", "Content-Encoding"},
}

// conditions are the conditional headers of a read request. Unparsable dates
// are ignored, as HTTP requires.
type conditions struct {
	ifMatch, ifNoneMatch               string
	ifModifiedSince, ifUnmodifiedSince time.Time
	// ifRange is If-Range: a Range applies only to the version it names.
	ifRange string
}

func conditionsIn(h http.Header) conditions {
	c := conditions{ifMatch: header(h, "If-Match"), ifNoneMatch: header(h, "If-None-Match"), ifRange: header(h, "If-Range")}
	c.ifModifiedSince = parseHTTPTime(header(h, "If-Modified-Since"))
	c.ifUnmodifiedSince = parseHTTPTime(header(h, "If-Unmodified-Since"))
	return c
}

// parseHTTPTime parses an HTTP date; an absent or malformed one is the zero
// time, which conditions ignore. The empty case is checked first because
// http.ParseTime allocates an error per layout it tries.
func parseHTTPTime(v string) time.Time {
	if v == "" {
		return time.Time{}
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return time.Time{}
	}
	return t
}

// answer is check for a response about to describe the object: a 304
// carries the object's validators, as HTTP asks (RFC 9110, 15.4.5).
func (c conditions) answer(h http.Header, etag string, lastModified time.Time) error {
	err := c.check(etag, lastModified)
	if err == errNotModified {
		if etag != "" {
			h.Set("Etag", etag)
		}
		if !lastModified.IsZero() {
			h.Set("Last-Modified", lastModified.UTC().Format(http.TimeFormat))
		}
	}
	return err
}

// check evaluates the conditions against an object as S3 does (RFC 9110
// order): a failed If-Match or If-Unmodified-Since is 412; a matching
// If-None-Match or an unmodified If-Modified-Since is 304.
func (c conditions) check(etag string, lastModified time.Time) error {
	lm := lastModified.Truncate(time.Second)
	switch {
	case c.ifMatch != "":
		if !etagListMatches(c.ifMatch, etag, true) {
			return errPrecondition
		}
	case !c.ifUnmodifiedSince.IsZero():
		if lm.After(c.ifUnmodifiedSince) {
			return errPrecondition
		}
	}
	switch {
	case c.ifNoneMatch != "":
		if etagListMatches(c.ifNoneMatch, etag, false) {
			return errNotModified
		}
	case !c.ifModifiedSince.IsZero():
		if !lm.After(c.ifModifiedSince) {
			return errNotModified
		}
	}
	return nil
}

// rangeApplies evaluates If-Range against the object's validators (RFC
// 9110, 13.1.5): an entity tag must match strongly, a date must be the
// Last-Modified exactly; anything else, a malformed value included, means
// the whole object.
func (c conditions) rangeApplies(etag string, lastModified time.Time) bool {
	v := c.ifRange
	switch {
	case v == "":
		return true
	case strings.HasPrefix(v, `"`) || strings.HasPrefix(v, "W/"):
		return !strings.HasPrefix(v, "W/") && trimETag(v) == trimETag(etag)
	}
	t := parseHTTPTime(v)
	return !t.IsZero() && t.Equal(lastModified.Truncate(time.Second))
}

// etagListMatches reports whether a comma-separated If-Match / If-None-Match
// list names etag, "*" matching all. Quotes are ignored; a weak tag (W/)
// matches only under the weak comparison of If-None-Match: If-Match asks
// for the strong one (RFC 9110, 13.1.1), and S3's ETags are never weak.
func etagListMatches(list, etag string, strong bool) bool {
	want := trimETag(etag)
	for _, e := range strings.Split(list, ",") {
		e = strings.TrimSpace(e)
		if e == "*" {
			return true
		}
		if strong && strings.HasPrefix(e, "W/") {
			continue
		}
		if trimETag(e) == want {
			return true
		}
	}
	return false
}

// unsatisfiable answers a Range that selects nothing of an object of m's
// validators and size: its preconditions come first (RFC 9110, 13.2.2: a
// 412 or 304 before a 416), and the 416 gives the size (15.5.17).
func unsatisfiable(h http.Header, c conditions, etag string, lastModified time.Time, size int64) error {
	if err := c.answer(h, etag, lastModified); err != nil {
		return err
	}
	h.Set("Content-Range", "bytes */"+formatInt(size))
	return errInvalidRange
}

func trimETag(e string) string {
	e = strings.TrimPrefix(e, "W/")
	return strings.Trim(e, `"`)
}

func formatInt(n int64) string { return strconv.FormatInt(n, 10) }
