package proxy

import (
	"cmp"
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
	q := rq.query
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

	for _, v := range []string{prefix, after} {
		if err := validKey(v); err != nil {
			return err
		}
	}
	if maxKeys > 0 {
		last, truncated, err := s.listPage(r, rq, up, b, &res, after, !v2)
		if err != nil {
			return err
		}
		if truncated && last != "" {
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

// maxListScan bounds the upstream pages one listing request may read while
// it skips keys the caller may not see.
const maxListScan = 20

// listPage fills res with one page of the caller's view of the bucket and
// returns the last key or common prefix it holds and whether more follow.
//
// Only visible names ever leave: the resume point is the last visible name,
// so tokens and markers cannot reveal keys outside the caller's grants. When
// a single grant covers what the caller may see under the requested prefix,
// the upstream listing is narrowed to it and every name it returns is
// visible; otherwise pages are filtered, and invisible stretches are skipped
// by reading up to maxListScan upstream pages.
func (s *Server) listPage(r *http.Request, rq *request, up upstream.Upstream, b policy.Bucket, res *listBucketResult, after string, withOwner bool) (string, bool, error) {
	prefix, delim := res.Prefix, res.Delimiter
	scope, ok := rq.policy.ListScope(rq.principal, rq.bucket, prefix, delim)
	if !ok {
		return "", false, nil
	}
	in := upstream.ListInput{
		Bucket:    b.Bucket,
		Prefix:    b.Prefix + scope,
		Delimiter: delim,
		MaxKeys:   int32(res.MaxKeys),
	}
	var last string
	for range maxListScan {
		if after != "" {
			in.StartAfter = b.Prefix + after
			if delim != "" && strings.HasSuffix(after, delim) && strings.HasPrefix(after, prefix) {
				in.StartAfter += afterAll
			}
		}
		page, err := up.List(r.Context(), in)
		if err != nil {
			return "", false, err
		}
		var seen string // last name of the page, visible or not
		for _, o := range page.Objects {
			key, ok := strings.CutPrefix(o.Key, b.Prefix)
			if !ok {
				continue
			}
			seen = max(seen, key)
			// Some S3 servers ignore start-after: never repeat a name.
			if key <= after || !rq.policy.Visible(rq.principal, rq.bucket, key) {
				continue
			}
			last = max(last, key)
			lo := listedObject{
				Key:          key,
				LastModified: s3Time(o.LastModified),
				ETag:         o.ETag,
				Size:         o.Size,
				StorageClass: cmp.Or(o.StorageClass, "STANDARD"),
			}
			if withOwner {
				lo.Owner = &owner{ID: rq.principal.String(), DisplayName: rq.principal.String()}
			}
			res.Contents = append(res.Contents, lo)
		}
		for _, cp := range page.CommonPrefixes {
			p, ok := strings.CutPrefix(cp, b.Prefix)
			if !ok {
				continue
			}
			seen = max(seen, p)
			if p > after && rq.policy.VisiblePrefix(rq.principal, rq.bucket, p) {
				last = max(last, p)
				res.CommonPrefixes = append(res.CommonPrefixes, commonPrefix{Prefix: p})
			}
		}
		if !page.IsTruncated || last != "" || seen == "" {
			if capped, ok := capListing(res); ok {
				return capped, true, nil
			}
			return last, page.IsTruncated && last != "", nil
		}
		after = seen // a page of invisible names: look further
	}
	return "", false, errSlowDown.withMessage("The listing holds too many keys outside your grants; list a narrower prefix.")
}

// capListing trims a page to MaxKeys names, for providers that return more
// than asked (some S3 servers ignore max-keys). It returns the last name kept.
func capListing(res *listBucketResult) (string, bool) {
	if len(res.Contents)+len(res.CommonPrefixes) <= res.MaxKeys {
		return "", false
	}
	var contents []listedObject
	var prefixes []commonPrefix
	i, j := 0, 0
	var last string
	for range res.MaxKeys {
		if j >= len(res.CommonPrefixes) || i < len(res.Contents) && res.Contents[i].Key < res.CommonPrefixes[j].Prefix {
			contents, last = append(contents, res.Contents[i]), res.Contents[i].Key
			i++
		} else {
			prefixes, last = append(prefixes, res.CommonPrefixes[j]), res.CommonPrefixes[j].Prefix
			j++
		}
	}
	res.Contents, res.CommonPrefixes = contents, prefixes
	return last, true
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
