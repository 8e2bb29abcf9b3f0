package proxy

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/s3edge/s3edge/policy"
	"github.com/s3edge/s3edge/upstream"
)

// putObject spools and verifies the body, then writes it upstream: the
// client gets 200 only after the upstream acknowledged the object.
func (s *Server) putObject(w http.ResponseWriter, r *http.Request, rq *request) error {
	up, b, err := s.objectTarget(rq, policy.Write)
	if err != nil {
		return err
	}
	hdr, err := objectHeadersIn(r.Header)
	if err != nil {
		return err
	}
	ck, cacheable := s.cacheKey(r, rq, b)
	sb, err := s.stageBody(w, r, rq, ck, cacheable)
	if err != nil {
		return err
	}
	defer sb.Close()
	s.metrics.bytesIn.WithLabelValues(rq.bucket).Add(float64(sb.size))
	info, err := up.Put(r.Context(), upstream.PutInput{
		Bucket:       b.Bucket,
		Key:          b.Prefix + rq.key,
		Body:         sb.reader(),
		Size:         sb.size,
		ContentMD5:   r.Header.Get("Content-MD5"),
		ContentType:  r.Header.Get("Content-Type"),
		StorageClass: r.Header.Get("X-Amz-Storage-Class"),
		Header:       hdr,
		SSEC:         sseC(r.Header, false),
		IfMatch:      r.Header.Get("If-Match"),
		IfNoneMatch:  r.Header.Get("If-None-Match"),
	})
	if err != nil {
		return err
	}
	sb.commit(&info, r.Header.Get("Content-Type"), hdr, rq, sseC(r.Header, false))
	writeAck(w, &info, r.Header)
	w.WriteHeader(http.StatusOK)
	return nil
}

// writeAck sets the headers S3 returns for a write: the ETag, the version and
// the SSE-C parameters the client sent (never the key itself).
func writeAck(w http.ResponseWriter, info *upstream.ObjectInfo, req http.Header) {
	h := w.Header()
	// Declared, as S3 does: a response whose end net/http would have to
	// work out keeps the connection off the hit path (replayConn.giveBack).
	h["Content-Length"] = []string{"0"}
	if info.ETag != "" {
		h.Set("ETag", info.ETag)
	}
	// "null" is how an unversioned bucket names the only version; some
	// providers send it and clients then ask for ?versionId=null.
	if info.VersionID != "" && info.VersionID != "null" {
		h.Set("X-Amz-Version-Id", info.VersionID)
	}
	if c := sseC(req, false); !c.IsZero() {
		h.Set("X-Amz-Server-Side-Encryption-Customer-Algorithm", c.Algorithm)
		h.Set("X-Amz-Server-Side-Encryption-Customer-Key-Md5", c.KeyMD5)
	}
}

// copySource parses x-amz-copy-source: "[/]bucket/key[?versionId=v]",
// URL-encoded.
func copySource(v string) (bucket, key, version string, err error) {
	raw, ver, _ := strings.Cut(v, "?versionId=")
	src, uerr := url.PathUnescape(raw)
	if uerr != nil {
		return "", "", "", errInvalidArgument.withMessage("Invalid copy source encoding.")
	}
	src = strings.TrimPrefix(src, "/")
	bucket, key, ok := strings.Cut(src, "/")
	if !ok || bucket == "" || key == "" {
		return "", "", "", errInvalidArgument.withMessage("Copy Source must mention the source bucket and key: sourcebucket/sourcekey.")
	}
	if err := validKey(key); err != nil {
		return "", "", "", err
	}
	return bucket, key, ver, nil
}

// copySourceTarget parses x-amz-copy-source and authorizes reading it: the
// preamble of both copies.
func copySourceTarget(r *http.Request, rq *request) (policy.Bucket, string, string, error) {
	bucket, key, version, err := copySource(r.Header.Get("X-Amz-Copy-Source"))
	if err != nil {
		return policy.Bucket{}, "", "", err
	}
	b, err := rq.policy.Bucket(bucket)
	if err != nil {
		return b, "", "", err
	}
	if err := rq.policy.Authorize(rq.principal, bucket, key, policy.Read); err != nil {
		return b, "", "", err
	}
	return b, key, version, nil
}

// copyObject copies within one upstream: the bytes never pass through
// s3edge. Both buckets must map to the same upstream.
func (s *Server) copyObject(w http.ResponseWriter, r *http.Request, rq *request) error {
	if err := s.authorize(rq, rq.key, policy.Write); err != nil {
		return err
	}
	srcB, srcKey, srcVersion, err := copySourceTarget(r, rq)
	if err != nil {
		return err
	}
	up, b, err := s.target(rq)
	if err != nil {
		return err
	}
	if srcB.Upstream != b.Upstream {
		return errNotImplemented.withMessage("s3edge copies only between buckets of one upstream.")
	}
	directive := r.Header.Get("X-Amz-Metadata-Directive")
	switch directive {
	case "", "COPY", "REPLACE":
	default:
		return errInvalidArgument.withMessage("Unknown metadata directive.")
	}
	in := upstream.CopyInput{
		Bucket:            b.Bucket,
		Key:               b.Prefix + rq.key,
		SourceBucket:      srcB.Bucket,
		SourceKey:         srcB.Prefix + srcKey,
		SourceVersionID:   srcVersion,
		MetadataDirective: directive,
		StorageClass:      r.Header.Get("X-Amz-Storage-Class"),
		IfMatch:           r.Header.Get("X-Amz-Copy-Source-If-Match"),
		IfNoneMatch:       r.Header.Get("X-Amz-Copy-Source-If-None-Match"),
		SSEC:              sseC(r.Header, false),
		SourceSSEC:        sseC(r.Header, true),
	}
	if t, err := http.ParseTime(r.Header.Get("X-Amz-Copy-Source-If-Modified-Since")); err == nil {
		in.IfModifiedSince = t
	}
	if t, err := http.ParseTime(r.Header.Get("X-Amz-Copy-Source-If-Unmodified-Since")); err == nil {
		in.IfUnmodifiedSince = t
	}
	if directive == "REPLACE" {
		if in.Header, err = objectHeadersIn(r.Header); err != nil {
			return err
		}
		in.ContentType = r.Header.Get("Content-Type")
	}
	s.invalidate(rq.bucket, rq.key)
	info, err := up.Copy(r.Context(), in)
	s.invalidate(rq.bucket, rq.key)
	if err != nil {
		return err
	}
	writeAck(w, &info, r.Header)
	return writeXML(w, http.StatusOK, &copyObjectResult{Xmlns: s3NS, LastModified: s3Time(info.LastModified), ETag: info.ETag})
}
