package proxy

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/s3edge/s3edge/cache"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/s3edge/s3edge/policy"
	"github.com/s3edge/s3edge/proxy/sigv4"
	"github.com/s3edge/s3edge/upstream"
)

// Config configures a Server. Zero values are the documented defaults.
type Config struct {
	// Policy returns the current credentials and bucket mapping; it is
	// called once per request so that a reload takes effect at once.
	Policy func() *policy.Policy
	// Upstreams are the providers by the names the policy's buckets use.
	Upstreams map[string]upstream.Upstream
	// SpoolDir holds request bodies while they are verified, before they go
	// upstream. It must be on a disk with room for the largest upload.
	SpoolDir string
	// MemorySpool is how many bytes of request bodies may be held in
	// memory, all uploads together, while SpoolDir cannot take them (disk
	// full or read-only); a body that does not fit gets 503. Negative: none.
	// Zero: 64 MiB.
	MemorySpool int64
	// Region is what GetBucketLocation and HeadBucket report (us-east-1).
	Region string
	// BaseDomains enable virtual-host style addressing: a request to
	// <bucket>.<base domain> names that bucket.
	BaseDomains []string
	// MaxObjectSize caps a single PutObject or UploadPart (5 GiB).
	MaxObjectSize int64
	// MaxHeaderBytes caps the request header section (64 KiB); larger gets
	// 400 RequestHeaderSectionTooLarge.
	MaxHeaderBytes int
	// StallTimeout bounds how long one write to or read from a client may
	// block (120s: Synapse's provider pauses up to 90s while its own client
	// is slow), so a stalled client cannot hold an upstream connection
	// or a spool file forever. Slow but moving clients are not cut off.
	StallTimeout time.Duration
	// Now is the clock for signature checks (time.Now).
	Now func() time.Time
	// Logger receives request logs; nil discards them.
	Logger *slog.Logger
	// Metrics, when set, receives the proxy's Prometheus collectors.
	Metrics prometheus.Registerer
	// Cache, when set, serves and stores objects of the buckets whose
	// cache rule allows it.
	Cache *cache.Cache
	// NoXCache turns off the X-Cache response header.
	NoXCache bool
}

// Server is the S3 front end: an http.Handler that authenticates, authorizes
// and serves S3 requests from its upstreams.
type Server struct {
	cfg      Config
	log      *slog.Logger
	verifier *sigv4.Verifier
	metrics  *metrics
	started  time.Time
	idPrefix string
	seq      atomic.Uint64
	memSpool atomic.Int64 // bytes of Config.MemorySpool in use
	// memSpoolLogAt is when an upload last went to memory was logged
	// (Unix nanoseconds): at most once a minute.
	memSpoolLogAt atomic.Int64
}

// New checks cfg and returns a Server.
func New(cfg Config) (*Server, error) {
	if cfg.Policy == nil {
		return nil, errors.New("proxy: no policy")
	}
	if cfg.SpoolDir == "" {
		return nil, errors.New("proxy: no spool directory")
	}
	if err := os.MkdirAll(cfg.SpoolDir, 0o700); err != nil {
		return nil, fmt.Errorf("proxy: spool directory: %w", err)
	}
	if err := clearSpool(cfg.SpoolDir); err != nil {
		return nil, err
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	if cfg.MaxObjectSize <= 0 {
		cfg.MaxObjectSize = 5 << 30
	}
	if cfg.MemorySpool == 0 {
		cfg.MemorySpool = 64 << 20
	}
	if cfg.MaxHeaderBytes <= 0 {
		cfg.MaxHeaderBytes = 64 << 10
	}
	if cfg.StallTimeout <= 0 {
		cfg.StallTimeout = 120 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	var err error
	s := &Server{
		cfg:      cfg,
		log:      log,
		started:  cfg.Now().UTC().Truncate(time.Second),
		idPrefix: fmt.Sprintf("%X", b[:]),
	}
	if s.metrics, err = newMetrics(cfg.Metrics); err != nil {
		return nil, fmt.Errorf("proxy: metrics: %w", err)
	}
	s.verifier = &sigv4.Verifier{
		Secret: func(id string) (string, error) { return cfg.Policy().Secret(id) },
		Now:    cfg.Now,
		HostBucket: func(host string) (string, bool) {
			return hostBucket(host, cfg.BaseDomains)
		},
	}
	return s, nil
}

// request is the state of one request as it moves through the pipeline.
type request struct {
	id        string
	op        string
	bucket    string // virtual bucket
	key       string // client's key
	principal *policy.Principal
	policy    *policy.Policy
	auth      *sigv4.Auth // nil for anonymous requests
	query     url.Values  // parsed once: the hit path reads it several times
	start     time.Time
	rc        *http.ResponseController // the connection's deadlines
	// cacheTag is the tag of the cache entries this request may be served
	// or store: "" for plain objects, a hash of the customer key for SSE-C.
	cacheTag string
	// hitOnly: the request is on the hit path, and declines (errNotHit)
	// before anything that would ask the upstream.
	hitOnly bool

	wroteHeader bool
	status      int
	errCode     string
	bytesOut    int64
}

// handler serves one operation; an error it returns goes to writeError.
type handler func(s *Server, w http.ResponseWriter, r *http.Request, rq *request) error

// handlers maps each supported operation to its handler. Operations that are
// named by route but absent here answer 501 NotImplemented.
var handlers = map[string]handler{
	"ListBuckets":                        (*Server).listBuckets,
	"HeadBucket":                         (*Server).headBucket,
	"CreateBucket":                       (*Server).createBucket,
	"GetBucketLocation":                  (*Server).bucketLocation,
	"GetBucketAcl":                       (*Server).acl,
	"GetObjectAcl":                       (*Server).acl,
	"GetBucketPolicy":                    cannedError(errNoSuchBucketPolicy),
	"GetBucketCors":                      cannedError(errNoSuchCORS),
	"GetBucketLifecycleConfiguration":    cannedError(errNoSuchLifecycle),
	"GetBucketTagging":                   cannedError(errNoSuchTagSet),
	"GetBucketWebsite":                   cannedError(errNoSuchWebsite),
	"GetBucketEncryption":                cannedError(errNoEncryption),
	"GetObjectLockConfiguration":         cannedError(errNoObjectLock),
	"GetBucketVersioning":                cannedXML(`<VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"/>`),
	"GetBucketLogging":                   cannedXML(`<BucketLoggingStatus xmlns="http://s3.amazonaws.com/doc/2006-03-01/"/>`),
	"GetBucketRequestPayment":            cannedXML(`<RequestPaymentConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Payer>BucketOwner</Payer></RequestPaymentConfiguration>`),
	"GetBucketAccelerateConfiguration":   cannedXML(`<AccelerateConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"/>`),
	"GetBucketNotificationConfiguration": cannedXML(`<NotificationConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"/>`),
	"GetObjectTagging":                   (*Server).objectTagging,
	"ListObjects":                        (*Server).listObjects,
	"ListObjectsV2":                      (*Server).listObjects,
	"HeadObject":                         (*Server).getObject,
	"GetObject":                          (*Server).getObject,
	"PutObject":                          (*Server).putObject,
	"CopyObject":                         (*Server).copyObject,
	"DeleteObject":                       (*Server).deleteObject,
	"DeleteObjects":                      (*Server).deleteObjects,
	"CreateMultipartUpload":              (*Server).createMultipart,
	"UploadPart":                         (*Server).uploadPart,
	"UploadPartCopy":                     (*Server).uploadPartCopy,
	"CompleteMultipartUpload":            (*Server).completeMultipart,
	"AbortMultipartUpload":               (*Server).abortMultipart,
	"ListParts":                          (*Server).listParts,
	"ListMultipartUploads":               (*Server).listUploads,
}

// serverName is the Server header of every response, shared: capacity 1
// keeps an Add from writing into it.
var serverName = []string{"s3edge"}

// ServeHTTP runs the pipeline: parse, authenticate, authorize (in the
// handler, which knows the action and key), dispatch, and map any error to an
// S3 error response in one place.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.serveHTTP(w, r, false)
}

// errNotHit declines, on the hit path, a request that needs the upstream.
var errNotHit = errors.New("proxy: not a cache hit")

// serveHit serves r if it can be answered without the upstream: a cache
// hit, or an error the proxy finds by itself (a bad signature, a denied
// key, a failed condition on a stored object). Otherwise it reports false,
// having written, counted, logged and fetched nothing, and r is to be
// served by ServeHTTP.
func (s *Server) serveHit(w http.ResponseWriter, r *http.Request) bool {
	return s.serveHTTP(w, r, true)
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request, hitOnly bool) (served bool) {
	rq := &request{
		id:      s.idPrefix + strconv.FormatUint(s.seq.Add(1), 16),
		policy:  s.cfg.Policy(),
		start:   time.Now(),
		hitOnly: hitOnly,
	}
	h := w.Header()
	h["X-Amz-Request-Id"] = []string{rq.id}
	h["Server"] = serverName
	rw := &responseWriter{ResponseWriter: w, rq: rq, stall: s.cfg.StallTimeout}
	// A client that announces a body and does not send it, or stops
	// reading a response, is cut off after StallTimeout; streaming copies
	// extend the deadlines as bytes move. Each deadline covers its own
	// phase only. The read deadline is set here and cleared once the body
	// is read: net/http reads on in the background while the handler runs
	// and cancels the request when that read fails, so a deadline left in
	// place would cut every response lasting longer than StallTimeout. The
	// write deadline is set when the response starts (WriteHeader), not
	// here, or an upload whose upstream took a while to acknowledge it
	// would lose its answer.
	rq.rc = http.NewResponseController(w)
	if r.ContentLength != 0 { // -1: chunked, length unknown
		_ = rq.rc.SetReadDeadline(time.Now().Add(s.cfg.StallTimeout))
	}
	// A connection the hit path handed over goes back to it after this
	// request if it can; it needs to know that the body was read.
	replay, _ := r.Context().Value(replayKey{}).(*replayConn)
	var body *bodyEnd
	if replay != nil && r.Body != nil && r.Body != http.NoBody {
		body = &bodyEnd{ReadCloser: r.Body}
		r.Body = body
	}
	defer func() {
		if served {
			s.logRequest(r, rq)
		}
	}()
	served = true // a panic aborting the response is logged too
	if err := s.serve(rw, r, rq); err != nil {
		if err == errNotHit {
			served = false
			return
		}
		s.writeError(rw, r, rq, err)
	}
	if replay != nil {
		replay.giveBack(rw, r, rq, body)
	}
	return
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request, rq *request) error {
	if headerSize(r) > s.cfg.MaxHeaderBytes {
		return errHeaderTooLarge
	}
	rq.query = requestQuery(r.URL.RawQuery)
	rt, err := parseRoute(r, rq.query, s.cfg.BaseDomains)
	if err != nil {
		return err
	}
	rq.op, rq.bucket, rq.key = rt.op, rt.bucket, rt.key
	if rq.hitOnly && rq.op != "GetObject" && rq.op != "HeadObject" {
		return errNotHit
	}
	if err := s.authenticate(r, rq); err != nil {
		return err
	}
	if rq.op == "" {
		return errMethodNotAllowed
	}
	if rq.bucket != "" {
		if _, err := rq.policy.Bucket(rq.bucket); err != nil {
			return err
		}
	}
	h, ok := handlers[rq.op]
	if !ok {
		return errNotImplemented.withMessage("s3edge does not implement %s.", rq.op)
	}
	return h(s, w, r, rq)
}

// authenticate verifies the request's signature and finds its principal. An
// unsigned request is anonymous; it can read only what a bucket's
// public_read_prefixes allow, and the handlers' authorization enforces that.
func (s *Server) authenticate(r *http.Request, rq *request) error {
	auth, err := s.verifier.Verify(r)
	switch {
	case errors.Is(err, sigv4.ErrMissingAuth):
		if rq.op != "GetObject" && rq.op != "HeadObject" {
			return err
		}
		rq.principal, _ = rq.policy.Principal("")
		return nil
	case err != nil:
		return err
	}
	pr, err := rq.policy.Principal(auth.AccessKeyID)
	if err != nil {
		return err
	}
	rq.auth, rq.principal = auth, pr
	return nil
}

// authorize checks that the principal may do a on key of the request's
// bucket. An anonymous caller that is refused gets AccessDenied like anyone.
func (s *Server) authorize(rq *request, key string, a policy.Action) error {
	return rq.policy.Authorize(rq.principal, rq.bucket, key, a)
}

// target resolves the request's virtual bucket to its upstream and upstream
// bucket, and maps a client key to the upstream key.
func (s *Server) target(rq *request) (upstream.Upstream, policy.Bucket, error) {
	b, err := rq.policy.Bucket(rq.bucket)
	if err != nil {
		return nil, b, err
	}
	up, ok := s.cfg.Upstreams[b.Upstream]
	if !ok {
		return nil, b, fmt.Errorf("proxy: bucket %s: upstream %q not configured", rq.bucket, b.Upstream)
	}
	return up, b, nil
}

// objectTarget authorizes action a on the request's key, then resolves its
// upstream: the preamble of every object operation.
func (s *Server) objectTarget(rq *request, a policy.Action) (upstream.Upstream, policy.Bucket, error) {
	if err := s.authorize(rq, rq.key, a); err != nil {
		return nil, policy.Bucket{}, err
	}
	return s.target(rq)
}

func headerSize(r *http.Request) int {
	n := len(r.Method) + len(r.RequestURI) + len(r.Host) + 16
	for k, vs := range r.Header {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	return n
}

func (s *Server) logRequest(r *http.Request, rq *request) {
	s.metrics.observe(rq)
	if !s.log.Enabled(r.Context(), slog.LevelDebug) {
		return
	}
	who := "-"
	if rq.principal != nil {
		who = rq.principal.String()
	}
	s.log.Debug("request", "request_id", rq.id, "op", rq.op, "bucket", rq.bucket,
		"principal", who, "status", rq.status, "code", rq.errCode,
		"bytes_out", rq.bytesOut, "duration", time.Since(rq.start))
}

func cannedError(e *APIError) handler {
	return func(s *Server, w http.ResponseWriter, r *http.Request, rq *request) error {
		if !anyGrant(rq) {
			return policy.ErrAccessDenied
		}
		return e
	}
}

func cannedXML(body string) handler {
	return func(s *Server, w http.ResponseWriter, r *http.Request, rq *request) error {
		if !anyGrant(rq) {
			return policy.ErrAccessDenied
		}
		writeXMLString(w, http.StatusOK, body)
		return nil
	}
}

// responseWriter records what went out, so that an error after the header
// aborts the connection instead of writing a second status. It keeps
// io.ReaderFrom so that file bodies still go out through sendfile.
type responseWriter struct {
	http.ResponseWriter
	rq    *request
	stall time.Duration
}

func (w *responseWriter) WriteHeader(code int) {
	if !w.rq.wroteHeader {
		w.rq.wroteHeader = true
		w.rq.status = code
		_ = w.rq.rc.SetWriteDeadline(time.Now().Add(w.stall))
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *responseWriter) Write(p []byte) (int, error) {
	if !w.rq.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	n, err := w.ResponseWriter.Write(p)
	w.rq.bytesOut += int64(n)
	return n, err
}

func (w *responseWriter) ReadFrom(src io.Reader) (int64, error) {
	if !w.rq.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	n, err := io.Copy(w.ResponseWriter, src)
	w.rq.bytesOut += n
	return n, err
}

// Unwrap lets http.ResponseController reach the connection's deadlines.
func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
