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
	p := "X-Amz-Server-Side-Encryption-Customer-"
	if copySource {
		p = "X-Amz-Copy-Source-Server-Side-Encryption-Customer-"
	}
	return upstream.SSEC{
		Algorithm: h.Get(p + "Algorithm"),
		Key:       h.Get(p + "Key"),
		KeyMD5:    h.Get(p + "Key-Md5"),
	}
}

// setObjectHeaders writes an object's metadata as response headers.
func setObjectHeaders(h http.Header, info *upstream.ObjectInfo) {
	for k, v := range info.Header {
		switch {
		case k == "X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id":
			// A KMS key ID names the provider account: not the
			// client's business.
		case len(k) > len(metaPrefix) && strings.EqualFold(k[:len(metaPrefix)], metaPrefix):
			// S3 sends user metadata names in lower case and SDKs
			// hand them to users as they arrive: bypass Go's
			// canonical form.
			h[strings.ToLower(k)] = []string{v}
		default:
			h.Set(k, v)
		}
	}
	ct := info.ContentType
	if ct == "" {
		ct = "binary/octet-stream"
	}
	h.Set("Content-Type", ct)
	if info.ETag != "" {
		h.Set("ETag", info.ETag)
	}
	if !info.LastModified.IsZero() {
		h.Set("Last-Modified", info.LastModified.UTC().Format(http.TimeFormat))
	}
	if info.StorageClass != "" && info.StorageClass != "STANDARD" {
		h.Set("X-Amz-Storage-Class", info.StorageClass)
	} else {
		h.Del("X-Amz-Storage-Class")
	}
	if info.VersionID != "" && info.VersionID != "null" {
		h.Set("X-Amz-Version-Id", info.VersionID)
	}
	h.Set("Accept-Ranges", "bytes")
}

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
}

func conditionsIn(h http.Header) conditions {
	c := conditions{ifMatch: h.Get("If-Match"), ifNoneMatch: h.Get("If-None-Match")}
	if t, err := http.ParseTime(h.Get("If-Modified-Since")); err == nil {
		c.ifModifiedSince = t
	}
	if t, err := http.ParseTime(h.Get("If-Unmodified-Since")); err == nil {
		c.ifUnmodifiedSince = t
	}
	return c
}

// check evaluates the conditions against an object as S3 does (RFC 9110
// order): a failed If-Match or If-Unmodified-Since is 412; a matching
// If-None-Match or an unmodified If-Modified-Since is 304.
func (c conditions) check(etag string, lastModified time.Time) error {
	lm := lastModified.Truncate(time.Second)
	switch {
	case c.ifMatch != "":
		if !etagListMatches(c.ifMatch, etag) {
			return errPrecondition
		}
	case !c.ifUnmodifiedSince.IsZero():
		if lm.After(c.ifUnmodifiedSince) {
			return errPrecondition
		}
	}
	switch {
	case c.ifNoneMatch != "":
		if etagListMatches(c.ifNoneMatch, etag) {
			return errNotModified
		}
	case !c.ifModifiedSince.IsZero():
		if !lm.After(c.ifModifiedSince) {
			return errNotModified
		}
	}
	return nil
}

// etagListMatches reports whether a comma-separated If-Match / If-None-Match
// list names etag; quotes and weak prefixes are ignored, "*" matches all.
func etagListMatches(list, etag string) bool {
	want := trimETag(etag)
	for _, e := range strings.Split(list, ",") {
		e = strings.TrimSpace(e)
		if e == "*" || trimETag(e) == want {
			return true
		}
	}
	return false
}

func trimETag(e string) string {
	e = strings.TrimPrefix(e, "W/")
	return strings.Trim(e, `"`)
}

func formatInt(n int64) string { return strconv.FormatInt(n, 10) }
