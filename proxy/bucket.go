package proxy

import (
	"encoding/xml"
	"net/http"

	"github.com/s3edge/s3edge/policy"
)

// anyGrant reports whether the caller has any grant on the request's bucket:
// enough to learn that it exists and how it is configured.
func anyGrant(rq *request) bool {
	for _, a := range []policy.Action{policy.Read, policy.Write, policy.List, policy.Delete} {
		if rq.policy.CanAccessBucket(rq.principal, rq.bucket, a) {
			return true
		}
	}
	return false
}

func (s *Server) headBucket(w http.ResponseWriter, r *http.Request, rq *request) error {
	if !anyGrant(rq) {
		return policy.ErrAccessDenied
	}
	up, b, err := s.target(rq)
	if err != nil {
		return err
	}
	if err := up.HeadBucket(r.Context(), b.Bucket); err != nil {
		return err
	}
	w.Header().Set("X-Amz-Bucket-Region", s.cfg.Region)
	w.WriteHeader(http.StatusOK)
	return nil
}

// createBucket answers as S3 in us-east-1 does for a bucket the caller
// already owns: buckets are configured, not created, but tools such as rclone
// create the bucket before their first upload.
func (s *Server) createBucket(w http.ResponseWriter, r *http.Request, rq *request) error {
	if !rq.policy.CanAccessBucket(rq.principal, rq.bucket, policy.Write) {
		return policy.ErrAccessDenied
	}
	w.Header().Set("Location", "/"+rq.bucket)
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Server) bucketLocation(w http.ResponseWriter, r *http.Request, rq *request) error {
	if !anyGrant(rq) {
		return policy.ErrAccessDenied
	}
	type locationConstraint struct {
		XMLName xml.Name `xml:"LocationConstraint"`
		Xmlns   string   `xml:"xmlns,attr"`
		Region  string   `xml:",chardata"`
	}
	loc := locationConstraint{Xmlns: s3NS}
	if s.cfg.Region != "us-east-1" {
		loc.Region = s.cfg.Region
	}
	return writeXML(w, http.StatusOK, &loc)
}

// acl answers GetBucketAcl and GetObjectAcl with the canned private ACL: the
// caller owns what it can see, nobody else has access.
func (s *Server) acl(w http.ResponseWriter, r *http.Request, rq *request) error {
	if rq.key == "" {
		if !anyGrant(rq) {
			return policy.ErrAccessDenied
		}
	} else {
		if err := s.authorize(rq, rq.key, policy.Read); err != nil {
			return err
		}
		if err := s.objectExists(r, rq); err != nil {
			return err
		}
	}
	id := rq.principal.String()
	res := accessControlPolicy{
		Xmlns: s3NS,
		Owner: owner{ID: id, DisplayName: id},
		Grants: []aclGrant{{
			Grantee: grantee{
				XMLNSXSI:    "http://www.w3.org/2001/XMLSchema-instance",
				Type:        "CanonicalUser",
				ID:          id,
				DisplayName: id,
			},
			Permission: "FULL_CONTROL",
		}},
	}
	return writeXML(w, http.StatusOK, &res)
}

// objectTagging answers an empty tag set: tags are not kept.
func (s *Server) objectTagging(w http.ResponseWriter, r *http.Request, rq *request) error {
	if err := s.authorize(rq, rq.key, policy.Read); err != nil {
		return err
	}
	if err := s.objectExists(r, rq); err != nil {
		return err
	}
	return writeXML(w, http.StatusOK, &tagging{Xmlns: s3NS})
}
