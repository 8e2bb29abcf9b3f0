package proxy

import (
	"encoding/xml"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/s3edge/s3edge/policy"
	"github.com/s3edge/s3edge/upstream"
)

// maxParts is S3's limit on the parts of one multipart upload.
const maxParts = 10000

func (s *Server) createMultipart(w http.ResponseWriter, r *http.Request, rq *request) error {
	up, b, err := s.objectTarget(rq, policy.Write)
	if err != nil {
		return err
	}
	hdr, err := objectHeadersIn(r.Header)
	if err != nil {
		return err
	}
	id, err := up.CreateMultipart(r.Context(), upstream.PutInput{
		Bucket:       b.Bucket,
		Key:          b.Prefix + rq.key,
		ContentType:  r.Header.Get("Content-Type"),
		StorageClass: r.Header.Get("X-Amz-Storage-Class"),
		Header:       hdr,
		SSEC:         sseC(r.Header, false),
	})
	if err != nil {
		return err
	}
	writeAck(w, &upstream.ObjectInfo{}, r.Header)
	return writeXML(w, http.StatusOK, &initiateMultipartUploadResult{Xmlns: s3NS, Bucket: rq.bucket, Key: rq.key, UploadID: id})
}

func partNumber(q url.Values) (int32, error) {
	n, err := strconv.ParseInt(q.Get("partNumber"), 10, 32)
	if err != nil || n < 1 || n > maxParts {
		return 0, errInvalidArgument.withMessage("Part number must be an integer between 1 and 10000, inclusive")
	}
	return int32(n), nil
}

func uploadID(q url.Values) (string, error) {
	id := q.Get("uploadId")
	if id == "" {
		return "", errNoSuchUpload
	}
	return id, nil
}

// partInput authorizes writing the request's key and starts the upstream
// input of a part from the query: the preamble of both ways to make a part.
func (s *Server) partInput(r *http.Request, rq *request) (upstream.Upstream, upstream.PartInput, error) {
	up, b, err := s.objectTarget(rq, policy.Write)
	if err != nil {
		return nil, upstream.PartInput{}, err
	}
	pn, err := partNumber(rq.query)
	if err != nil {
		return nil, upstream.PartInput{}, err
	}
	id, err := uploadID(rq.query)
	if err != nil {
		return nil, upstream.PartInput{}, err
	}
	return up, upstream.PartInput{Bucket: b.Bucket, Key: b.Prefix + rq.key, UploadID: id, PartNumber: pn, SSEC: sseC(r.Header, false)}, nil
}

// uploadPart spools and verifies a part like a PUT, then sends it upstream.
func (s *Server) uploadPart(w http.ResponseWriter, r *http.Request, rq *request) error {
	up, in, err := s.partInput(r, rq)
	if err != nil {
		return err
	}
	sp, err := s.spoolBody(w, r, rq)
	if err != nil {
		return err
	}
	defer sp.Close()
	s.metrics.bytesIn.WithLabelValues(rq.bucket).Add(float64(sp.size))
	in.Body, in.Size, in.ContentMD5 = sp.body(), sp.size, r.Header.Get("Content-MD5")
	part, err := up.UploadPart(r.Context(), in)
	if err != nil {
		return err
	}
	writeAck(w, &upstream.ObjectInfo{ETag: part.ETag}, r.Header)
	w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Server) completeMultipart(w http.ResponseWriter, r *http.Request, rq *request) error {
	if err := s.authorize(rq, rq.key, policy.Write); err != nil {
		return err
	}
	id, err := uploadID(rq.query)
	if err != nil {
		return err
	}
	up, b, err := s.target(rq)
	if err != nil {
		return err
	}
	// 10,000 parts with checksums fit well within 8 MiB.
	body, err := s.readSmallBody(r, rq, 8<<20)
	if err != nil {
		return err
	}
	parts, err := parseCompleteRequest(body)
	if err != nil {
		return err
	}
	s.invalidate(rq.bucket, rq.key)
	defer s.invalidate(rq.bucket, rq.key)
	info, err := up.CompleteMultipart(r.Context(), upstream.CompleteInput{
		Bucket:      b.Bucket,
		Key:         b.Prefix + rq.key,
		UploadID:    id,
		Parts:       parts,
		SSEC:        sseC(r.Header, false),
		IfMatch:     r.Header.Get("If-Match"),
		IfNoneMatch: r.Header.Get("If-None-Match"),
	})
	if err != nil {
		return err
	}
	writeAck(w, &upstream.ObjectInfo{VersionID: info.VersionID}, r.Header)
	loc := "http://" + r.Host + "/" + rq.bucket + "/" + (&url.URL{Path: rq.key}).EscapedPath()
	if r.TLS != nil {
		loc = "https" + strings.TrimPrefix(loc, "http")
	}
	return writeXML(w, http.StatusOK, &completeMultipartUploadResult{Xmlns: s3NS, Location: loc, Bucket: rq.bucket, Key: rq.key, ETag: info.ETag})
}

func (s *Server) abortMultipart(w http.ResponseWriter, r *http.Request, rq *request) error {
	// Whoever may upload may abort: SDKs abort a failed transfer on their own.
	if err := s.authorize(rq, rq.key, policy.Write); err != nil {
		return err
	}
	id, err := uploadID(rq.query)
	if err != nil {
		return err
	}
	up, b, err := s.target(rq)
	if err != nil {
		return err
	}
	if err := up.AbortMultipart(r.Context(), b.Bucket, b.Prefix+rq.key, id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) listParts(w http.ResponseWriter, r *http.Request, rq *request) error {
	// The uploader (write) and a lister (list) may both see the parts.
	if s.authorize(rq, rq.key, policy.Write) != nil {
		if err := s.authorize(rq, rq.key, policy.List); err != nil {
			return err
		}
	}
	q := rq.query
	id, err := uploadID(q)
	if err != nil {
		return err
	}
	up, b, err := s.target(rq)
	if err != nil {
		return err
	}
	in := upstream.ListPartsInput{Bucket: b.Bucket, Key: b.Prefix + rq.key, UploadID: id, MaxParts: 1000}
	if v := q.Get("max-parts"); v != "" {
		n, err := strconv.ParseInt(v, 10, 32)
		if err != nil || n < 0 {
			return errInvalidArgument.withMessage("max-parts must be a non-negative integer")
		}
		in.MaxParts = int32(min(n, 1000))
	}
	if v := q.Get("part-number-marker"); v != "" {
		n, err := strconv.ParseInt(v, 10, 32)
		if err != nil || n < 0 {
			return errInvalidArgument.withMessage("part-number-marker must be a non-negative integer")
		}
		in.PartNumberMarker = int32(n)
	}
	page, err := up.ListParts(r.Context(), in)
	if err != nil {
		return err
	}
	id2 := rq.principal.String()
	res := listPartsResult{
		Xmlns: s3NS, Bucket: rq.bucket, Key: rq.key, UploadID: id,
		Initiator: owner{ID: id2, DisplayName: id2}, Owner: owner{ID: id2, DisplayName: id2},
		StorageClass: page.StorageClass, PartNumberMarker: in.PartNumberMarker,
		NextPartNumberMarker: page.NextPartNumberMarker, MaxParts: in.MaxParts, IsTruncated: page.IsTruncated,
	}
	if res.StorageClass == "" {
		res.StorageClass = "STANDARD"
	}
	for _, p := range page.Parts {
		res.Parts = append(res.Parts, listedPart{PartNumber: p.PartNumber, LastModified: s3Time(p.LastModified), ETag: p.ETag, Size: p.Size})
	}
	return writeXML(w, http.StatusOK, &res)
}

func (s *Server) listUploads(w http.ResponseWriter, r *http.Request, rq *request) error {
	if !rq.policy.CanAccessBucket(rq.principal, rq.bucket, policy.List) {
		return policy.ErrAccessDenied
	}
	up, b, err := s.target(rq)
	if err != nil {
		return err
	}
	q := rq.query
	maxUploads, err := parseMaxKeys(q.Get("max-uploads"))
	if err != nil {
		return err
	}
	for _, v := range []string{q.Get("prefix"), q.Get("key-marker")} {
		if err := validKey(v); err != nil {
			return err
		}
	}
	in := upstream.ListUploadsInput{
		Bucket:         b.Bucket,
		Prefix:         b.Prefix + q.Get("prefix"),
		Delimiter:      q.Get("delimiter"),
		UploadIDMarker: q.Get("upload-id-marker"),
		MaxUploads:     int32(maxUploads),
	}
	if km := q.Get("key-marker"); km != "" {
		in.KeyMarker = b.Prefix + km
	}
	res := listMultipartUploadsResult{
		Xmlns: s3NS, Bucket: rq.bucket, KeyMarker: q.Get("key-marker"), UploadIDMarker: in.UploadIDMarker,
		Prefix: q.Get("prefix"), Delimiter: in.Delimiter, MaxUploads: in.MaxUploads,
	}
	if maxUploads > 0 {
		page, err := up.ListUploads(r.Context(), in)
		if err != nil {
			return err
		}
		id := rq.principal.String()
		var lastKey, lastID string // of visible uploads only: markers must not leak keys
		for _, u := range page.Uploads {
			key, ok := strings.CutPrefix(u.Key, b.Prefix)
			if !ok || !rq.policy.Visible(rq.principal, rq.bucket, key) {
				continue
			}
			lastKey, lastID = key, u.UploadID
			sc := u.StorageClass
			if sc == "" {
				sc = "STANDARD"
			}
			res.Uploads = append(res.Uploads, listedUpload{Key: key, UploadID: u.UploadID, Initiator: owner{ID: id, DisplayName: id}, Owner: owner{ID: id, DisplayName: id}, StorageClass: sc, Initiated: s3Time(u.Initiated)})
		}
		for _, cp := range page.CommonPrefixes {
			if p, ok := strings.CutPrefix(cp, b.Prefix); ok && rq.policy.VisiblePrefix(rq.principal, rq.bucket, p) {
				res.CommonPrefixes = append(res.CommonPrefixes, commonPrefix{Prefix: p})
			}
		}
		if page.IsTruncated && lastKey != "" {
			res.IsTruncated, res.NextKeyMarker, res.NextUploadIDMarker = true, lastKey, lastID
		}
	}
	return writeXML(w, http.StatusOK, &res)
}

// parseCompleteRequest parses and checks the part list of
// CompleteMultipartUpload.
func parseCompleteRequest(body []byte) ([]upstream.Part, error) {
	var req completeRequest
	if err := xml.Unmarshal(body, &req); err != nil || len(req.Parts) == 0 || len(req.Parts) > maxParts {
		return nil, errMalformedXML
	}
	parts := make([]upstream.Part, len(req.Parts))
	for i, p := range req.Parts {
		if p.PartNumber < 1 || p.PartNumber > maxParts || p.ETag == "" {
			return nil, errInvalidPart
		}
		if i > 0 && p.PartNumber <= req.Parts[i-1].PartNumber {
			return nil, errInvalidPartOrder
		}
		parts[i] = upstream.Part{PartNumber: p.PartNumber, ETag: p.ETag}
	}
	return parts, nil
}
