package proxy

import (
	"encoding/xml"
	"net/http"

	"github.com/s3edge/s3edge/policy"
)

// maxDeleteKeys is S3's limit on the keys of one DeleteObjects request.
const maxDeleteKeys = 1000

func (s *Server) deleteObject(w http.ResponseWriter, r *http.Request, rq *request) error {
	if err := s.authorize(rq, rq.key, policy.Delete); err != nil {
		return err
	}
	if rq.query.Has("versionId") {
		// Dropping the version would delete something else than asked.
		return errNotImplemented.withMessage("s3edge does not delete object versions.")
	}
	up, b, err := s.target(rq)
	if err != nil {
		return err
	}
	// Before and after: a fill racing the delete must not survive it.
	s.invalidate(rq.bucket, rq.key)
	err = up.Delete(r.Context(), b.Bucket, b.Prefix+rq.key)
	s.invalidate(rq.bucket, rq.key)
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// deleteObjects deletes a batch of keys in one upstream request. Keys the
// caller may not delete get a per-key AccessDenied and are not sent.
func (s *Server) deleteObjects(w http.ResponseWriter, r *http.Request, rq *request) error {
	if !rq.policy.CanAccessBucket(rq.principal, rq.bucket, policy.Delete) {
		return policy.ErrAccessDenied
	}
	up, b, err := s.target(rq)
	if err != nil {
		return err
	}
	// 1000 keys of at most 1024 bytes each, XML-escaped, fit in 8 MiB.
	body, err := s.readSmallBody(r, rq, 8<<20)
	if err != nil {
		return err
	}
	req, err := parseDeleteRequest(body)
	if err != nil {
		return err
	}
	res := deleteResult{Xmlns: s3NS}
	var keys []string
	sent := make(map[string]string) // upstream key → client key
	for _, o := range req.Objects {
		if err := validKey(o.Key); err != nil {
			api := toAPIError(err)
			res.Errors = append(res.Errors, deleteError{Key: o.Key, Code: api.Code, Message: api.Message})
			continue
		}
		switch {
		case o.VersionID != "":
			res.Errors = append(res.Errors, deleteError{Key: o.Key, Code: errNotImplemented.Code, Message: "s3edge does not delete object versions."})
		case s.authorize(rq, o.Key, policy.Delete) != nil:
			res.Errors = append(res.Errors, deleteError{Key: o.Key, Code: errAccessDenied.Code, Message: errAccessDenied.Message})
		default:
			uk := b.Prefix + o.Key
			if _, dup := sent[uk]; !dup {
				keys = append(keys, uk)
			}
			sent[uk] = o.Key
		}
	}
	if len(keys) > 0 {
		for _, ck := range sent {
			s.invalidate(rq.bucket, ck)
		}
		results, err := up.DeleteObjects(r.Context(), b.Bucket, keys)
		for _, ck := range sent {
			s.invalidate(rq.bucket, ck)
		}
		if err != nil {
			return err
		}
		for _, d := range results {
			key := sent[d.Key]
			if d.Code != "" {
				res.Errors = append(res.Errors, deleteError{Key: key, Code: d.Code, Message: d.Message})
			} else if !req.Quiet {
				res.Deleted = append(res.Deleted, deletedObject{Key: key})
			}
		}
	}
	return writeXML(w, http.StatusOK, &res)
}

// parseDeleteRequest parses and checks the body of DeleteObjects.
func parseDeleteRequest(body []byte) (*deleteRequest, error) {
	var req deleteRequest
	if err := xml.Unmarshal(body, &req); err != nil || len(req.Objects) == 0 || len(req.Objects) > maxDeleteKeys {
		return nil, errMalformedXML
	}
	for _, o := range req.Objects {
		if o.Key == "" {
			return nil, errMalformedXML
		}
	}
	return &req, nil
}
