package proxy

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/s3edge/s3edge/policy"
	"github.com/s3edge/s3edge/upstream"
)

// maxListKeys is S3's page size limit.
const maxListKeys = 1000

// afterAll sorts after every key that starts with a given prefix (in
// practice: S3 keys are UTF-8 and this is the greatest code point), so that
// a listing resumed after a common prefix skips everything under it.
const afterAll = "\U0010FFFF"

// listObjects serves ListObjects (V1) and ListObjectsV2. Pagination does not
// pass the upstream's continuation tokens through: the token s3edge hands out
// is the last key or common prefix it returned, and the next page starts after
// it. That keeps the upstream's key prefix out of the client's view, lets V1
// markers and V2 tokens share one path, and lets a page resume after a common
// prefix without listing everything under it again.
func (s *Server) listObjects(w http.ResponseWriter, r *http.Request, rq *request) error {
	if !rq.policy.CanAccessBucket(rq.principal, rq.bucket, policy.List) {
		return policy.ErrAccessDenied
	}
	up, b, err := s.target(rq)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	v2 := rq.op == "ListObjectsV2"
	prefix, delim := q.Get("prefix"), q.Get("delimiter")
	maxKeys, err := parseMaxKeys(q.Get("max-keys"))
	if err != nil {
		return err
	}
	enc := q.Get("encoding-type")
	if enc != "" && enc != "url" {
		return errInvalidArgument.withMessage("Invalid Encoding Method specified in Request")
	}

	res := listBucketResult{Xmlns: s3NS, Name: rq.bucket, Prefix: prefix, MaxKeys: maxKeys, Delimiter: delim}
	var after string
	if v2 {
		res.StartAfter = q.Get("start-after")
		after = res.StartAfter
		if tok := q.Get("continuation-token"); tok != "" {
			dec, err := base64.RawURLEncoding.DecodeString(tok)
			if err != nil {
				return errInvalidArgument.withMessage("The continuation token provided is incorrect")
			}
			res.Token, after = tok, string(dec)
		}
	} else {
		marker := q.Get("marker")
		res.Marker = &marker
		after = marker
	}

	if maxKeys > 0 {
		in := upstream.ListInput{
			Bucket:    b.Bucket,
			Prefix:    b.Prefix + prefix,
			Delimiter: delim,
			MaxKeys:   int32(maxKeys),
		}
		if after != "" {
			in.StartAfter = b.Prefix + after
			if delim != "" && strings.HasSuffix(after, delim) && strings.HasPrefix(after, prefix) {
				in.StartAfter += afterAll
			}
		}
		page, err := up.List(r.Context(), in)
		if err != nil {
			return err
		}
		last := s.fillListing(&res, rq, b.Prefix, page, !v2)
		if page.IsTruncated && last != "" {
			res.IsTruncated = true
			if v2 {
				res.NextToken = base64.RawURLEncoding.EncodeToString([]byte(last))
			} else {
				res.NextMarker = last
			}
		}
	}
	if v2 {
		n := len(res.Contents) + len(res.CommonPrefixes)
		res.KeyCount = &n
	}
	if enc == "url" {
		res.EncodingType = "url"
		encodeListing(&res)
	}
	return writeXML(w, http.StatusOK, &res)
}

// fillListing copies the visible part of an upstream page into res, with the
// bucket's prefix removed, and returns the last key or prefix of the page.
func (s *Server) fillListing(res *listBucketResult, rq *request, bucketPrefix string, page upstream.ListPage, withOwner bool) string {
	var last string
	for _, o := range page.Objects {
		key, ok := strings.CutPrefix(o.Key, bucketPrefix)
		if !ok {
			continue
		}
		last = max(last, key)
		if !rq.policy.Visible(rq.principal, rq.bucket, key) {
			continue
		}
		lo := listedObject{
			Key:          key,
			LastModified: s3Time(o.LastModified),
			ETag:         o.ETag,
			Size:         o.Size,
			StorageClass: o.StorageClass,
		}
		if lo.StorageClass == "" {
			lo.StorageClass = "STANDARD"
		}
		if withOwner {
			lo.Owner = &owner{ID: rq.principal.String(), DisplayName: rq.principal.String()}
		}
		res.Contents = append(res.Contents, lo)
	}
	for _, cp := range page.CommonPrefixes {
		p, ok := strings.CutPrefix(cp, bucketPrefix)
		if !ok {
			continue
		}
		last = max(last, p)
		if rq.policy.VisiblePrefix(rq.principal, rq.bucket, p) {
			res.CommonPrefixes = append(res.CommonPrefixes, commonPrefix{Prefix: p})
		}
	}
	return last
}

func parseMaxKeys(v string) (int, error) {
	if v == "" {
		return maxListKeys, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, errInvalidArgument.withMessage("Provided max-keys not an integer or within integer range")
	}
	return min(n, maxListKeys), nil
}

// encodeListing applies encoding-type=url: keys may hold bytes that XML 1.0
// cannot carry.
func encodeListing(res *listBucketResult) {
	e := url.QueryEscape
	res.Prefix, res.Delimiter, res.StartAfter = e(res.Prefix), e(res.Delimiter), e(res.StartAfter)
	res.NextMarker = e(res.NextMarker)
	if res.Marker != nil {
		m := e(*res.Marker)
		res.Marker = &m
	}
	for i := range res.Contents {
		res.Contents[i].Key = e(res.Contents[i].Key)
	}
	for i := range res.CommonPrefixes {
		res.CommonPrefixes[i].Prefix = e(res.CommonPrefixes[i].Prefix)
	}
}

// listBuckets lists the virtual buckets the caller has any grant on.
func (s *Server) listBuckets(w http.ResponseWriter, r *http.Request, rq *request) error {
	if rq.principal.Anonymous() {
		return policy.ErrAccessDenied
	}
	res := listAllMyBucketsResult{
		Xmlns: s3NS,
		Owner: owner{ID: rq.principal.String(), DisplayName: rq.principal.String()},
	}
	for _, name := range rq.policy.VisibleBuckets(rq.principal) {
		res.Buckets = append(res.Buckets, bucketListed{Name: name, CreationDate: s3Time(s.started)})
	}
	return writeXML(w, http.StatusOK, &res)
}
