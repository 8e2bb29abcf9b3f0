package sigv4

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"
)

// SecretFunc returns the secret access key for an access key ID. Its error
// (for example the policy's "unknown access key") is returned by Verify
// wrapped, so errors.Is still matches it. It must be safe for concurrent use.
type SecretFunc func(accessKeyID string) (secret string, err error)

// Defaults for the zero values of Verifier's fields.
const (
	DefaultMaxSkew          = 15 * time.Minute
	DefaultMaxPresignExpiry = 7 * 24 * time.Hour // S3's limit: 604800 seconds
)

// keyCacheSize bounds the signing-key cache. A key is valid for one access
// key, day, region and service, so a few entries per active client suffice.
const keyCacheSize = 1024

// Verifier checks SigV4 signatures. Its zero value (with Secret set) is
// ready to use; it is safe for concurrent use and must not be copied after
// first use.
type Verifier struct {
	Secret           SecretFunc       // required
	Now              func() time.Time // nil = time.Now
	MaxSkew          time.Duration    // allowed clock difference; 0 = 15 min
	MaxPresignExpiry time.Duration    // largest X-Amz-Expires accepted; 0 = 7 days
	Region           string           // if set, the credential scope must name it

	// HostBucket names the bucket of a virtual-host style request (the
	// part of Host before a base domain), which signature version 2 signs
	// as part of the resource. nil: every request is path style.
	HostBucket func(host string) (bucket string, ok bool)

	keys keyCache
}

func (v *Verifier) now() time.Time {
	if v.Now != nil {
		return v.Now()
	}
	return time.Now()
}

func (v *Verifier) maxSkew() time.Duration {
	if v.MaxSkew > 0 {
		return v.MaxSkew
	}
	return DefaultMaxSkew
}

func (v *Verifier) maxExpiry() time.Duration {
	if v.MaxPresignExpiry > 0 {
		return v.MaxPresignExpiry
	}
	return DefaultMaxPresignExpiry
}

// Verify authenticates r from its Authorization header or its presigned
// query. It never reads r.Body, so it can run before a "100-continue"
// response. r.URL must be as net/http parsed it (route rewriting comes
// after). See the package comment for errors and the body contract.
func (v *Verifier) Verify(r *http.Request) (*Auth, error) {
	if v.Secret == nil {
		return nil, fmt.Errorf("sigv4: verifier has no SecretFunc")
	}
	authz := r.Header["Authorization"]
	var qbuf [16]param
	q, qerr := parseQuery(r.URL.RawQuery, qbuf[:0])
	if qerr != nil {
		if len(authz) == 0 && !strings.Contains(r.URL.RawQuery, "X-Amz-") && !strings.Contains(r.URL.RawQuery, "Signature") {
			return nil, ErrMissingAuth
		}
		return nil, qerr
	}
	presigned := hasParam(q, "X-Amz-Algorithm") || hasParam(q, "X-Amz-Credential") || hasParam(q, "X-Amz-Signature")
	presignedV2 := hasParam(q, "AWSAccessKeyId") && hasParam(q, "Signature")
	switch {
	case len(authz) > 0 && (presigned || presignedV2), presigned && presignedV2:
		return nil, fmt.Errorf("%w: several of an Authorization header and presigned queries", ErrMalformedAuth)
	case len(authz) > 1:
		return nil, fmt.Errorf("%w: several Authorization headers", ErrMalformedAuth)
	case len(authz) == 1 && strings.HasPrefix(strings.TrimLeft(authz[0], " "), "AWS "):
		return v.verifyV2Header(r, authz[0])
	case len(authz) == 1:
		return v.verifyHeader(r, authz[0], q)
	case presigned:
		return v.verifyPresigned(r, q)
	case presignedV2:
		return v.verifyV2Query(r, q)
	}
	return nil, ErrMissingAuth
}

func hasParam(q []param, key string) bool {
	for i := range q {
		if q[i].key == key {
			return true
		}
	}
	return false
}

// request is what both forms of authentication have in common once parsed.
type request struct {
	cred       credential
	signedRaw  string
	signature  [32]byte
	amzDate    string
	date       time.Time
	payloadRaw string
	presigned  bool
}

func (v *Verifier) verifyHeader(r *http.Request, authz string, q []param) (*Auth, error) {
	ah, err := parseAuthorization(authz)
	if err != nil {
		return nil, err
	}
	t, amzDate, err := requestTime(r.Header)
	if err != nil {
		return nil, err
	}
	if d := v.now().Sub(t); d > v.maxSkew() || -d > v.maxSkew() {
		return nil, fmt.Errorf("%w: request time %s differs from server time by %s", ErrTimeSkewed, amzDate, d.Round(time.Second))
	}
	payload := r.Header["X-Amz-Content-Sha256"]
	if len(payload) != 1 {
		return nil, fmt.Errorf("%w: exactly one x-amz-content-sha256 header is required, got %d", ErrMalformedAuth, len(payload))
	}
	return v.verify(r, q, request{
		cred: ah.cred, signedRaw: ah.signedHeaders, signature: ah.signature,
		amzDate: amzDate, date: t, payloadRaw: payload[0],
	})
}

func (v *Verifier) verifyPresigned(r *http.Request, q []param) (*Auth, error) {
	p, err := parsePresigned(q, v.maxExpiry())
	if err != nil {
		return nil, err
	}
	now := v.now()
	if d := p.date.Sub(now); d > v.maxSkew() {
		return nil, fmt.Errorf("%w: presigned url not valid before %s", ErrTimeSkewed, p.amzDate)
	}
	if now.Sub(p.date) > p.expires {
		return nil, fmt.Errorf("%w: at %s", ErrExpired, p.date.Add(p.expires).Format(iso8601Basic))
	}
	payload := p.contentSHA256
	if payload == "" {
		switch h := r.Header["X-Amz-Content-Sha256"]; len(h) {
		case 0:
			payload = unsignedPayload
		case 1:
			payload = h[0]
		default:
			return nil, fmt.Errorf("%w: several x-amz-content-sha256 headers", ErrMalformedAuth)
		}
	}
	return v.verify(r, q, request{
		cred: p.cred, signedRaw: p.signedHeaders, signature: p.signature,
		amzDate: p.amzDate, date: p.date, payloadRaw: payload, presigned: true,
	})
}

// bufPool recycles the buffer the canonical request is built in.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// verify does the checks common to both forms, then the signature.
func (v *Verifier) verify(r *http.Request, q []param, req request) (*Auth, error) {
	c := &req.cred
	switch {
	case req.amzDate[:8] != c.date:
		return nil, fmt.Errorf("%w: credential date %s does not match request date %s", ErrMalformedAuth, c.date, req.amzDate)
	case c.service != "s3":
		return nil, fmt.Errorf("%w: credential service %q is not s3", ErrMalformedAuth, truncate(c.service))
	case v.Region != "" && c.region != v.Region:
		return nil, fmt.Errorf("%w: region %q is wrong; expecting %q", ErrMalformedAuth, truncate(c.region), v.Region)
	}
	signed, err := parseSignedHeaders(req.signedRaw)
	if err != nil {
		return nil, err
	}
	mode, err := parsePayload(req.payloadRaw)
	if err != nil {
		return nil, err
	}
	decoded, err := parseDecodedLength(r.Header)
	if err != nil {
		return nil, err
	}
	trailer, err := parseTrailerNames(r.Header)
	if err != nil {
		return nil, err
	}
	if len(trailer) > 0 && mode != StreamingSignedTrailer && mode != StreamingUnsignedTrailer {
		return nil, fmt.Errorf("%w: x-amz-trailer with payload mode %v", ErrMalformedAuth, mode)
	}
	if err := checkAmzSigned(r.Header, signed); err != nil {
		return nil, err
	}

	secret, err := v.Secret(c.accessKeyID)
	if err != nil {
		return nil, fmt.Errorf("sigv4: access key %q: %w", truncate(c.accessKeyID), err)
	}
	sk := keyFor(c)
	key, cached := v.keys.lookup(sk, secret)
	if !cached {
		key = deriveSigningKey(secret, c.date, c.region, c.service)
	}
	if err := checkSignature(r, q, &req, signed, &key); err != nil {
		return nil, err
	}
	if !cached {
		v.keys.store(sk, secret, key)
	}

	a := &Auth{
		AccessKeyID:   c.accessKeyID,
		Region:        c.region,
		Service:       c.service,
		Date:          req.date,
		Presigned:     req.presigned,
		SignedHeaders: signed,
		Payload:       mode,
		DecodedLength: decoded,
		Trailer:       trailer,
		chain:         &chain{key: key, seed: req.signature, scope: c.scope, amzDate: req.amzDate},
	}
	if mode == PayloadSigned {
		a.PayloadHash = strings.ToLower(req.payloadRaw)
	}
	return a, nil
}

// checkSignature rebuilds the canonical request and compares signatures in
// constant time. The canonical URI is tried in two forms: the AWS encoding of
// the decoded path (what every SDK signs), then the path exactly as sent, for
// clients that encode differently (a literal '+', "%2F" in a key, ...).
// Both decode to the same key, so accepting either grants nothing more.
func checkSignature(r *http.Request, q []param, req *request, signed []string, key *[32]byte) error {
	bp := bufPool.Get().(*[]byte)
	buf := appendCanonicalQuery((*bp)[:0], q, req.presigned)
	in := canonicalInput{
		method: r.Method, query: buf[:len(buf):len(buf)],
		signedHeaders: signed, signedRaw: req.signedRaw, payload: req.payloadRaw,
	}
	pathStart := len(buf)
	buf = appendCanonicalPath(buf, r.URL.Path)
	in.path = buf[pathStart:len(buf):len(buf)]
	crStart := len(buf)
	buf = appendCanonicalRequest(buf, r, &in)
	stsStart := len(buf)
	buf = appendStringToSign(buf, req.amzDate, req.cred.scope, buf[crStart:stsStart])
	sig := hmacSHA256(key[:], buf[stsStart:])
	ok := subtle.ConstantTimeCompare(sig[:], req.signature[:]) == 1
	var mismatch *SignatureError
	if !ok {
		mismatch = &SignatureError{CanonicalRequest: string(buf[crStart:stsStart]), StringToSign: string(buf[stsStart:])}
		if wire := wirePath(r); wire != string(in.path) {
			in.path = []byte(wire)
			buf = buf[:crStart]
			buf = appendCanonicalRequest(buf, r, &in)
			stsStart = len(buf)
			buf = appendStringToSign(buf, req.amzDate, req.cred.scope, buf[crStart:stsStart])
			sig = hmacSHA256(key[:], buf[stsStart:])
			ok = subtle.ConstantTimeCompare(sig[:], req.signature[:]) == 1
		}
	}
	if cap(buf) <= 64<<10 {
		*bp = buf[:0]
		bufPool.Put(bp)
	}
	if !ok {
		return mismatch
	}
	return nil
}

// wirePath is the request path as the client sent it.
func wirePath(r *http.Request) string {
	if u := r.RequestURI; u != "" && u[0] == '/' {
		if i := strings.IndexByte(u, '?'); i >= 0 {
			u = u[:i]
		}
		return u
	}
	return r.URL.EscapedPath()
}

// checkAmzSigned refuses x-amz-* headers that are not signed, as S3 does:
// the proxy forwards such headers, so an unsigned one could have been added
// by anyone replaying the request. x-amz-content-sha256 is exempt (S3
// tolerates it unsigned): it is bound by the canonical request anyway.
func checkAmzSigned(h http.Header, signed []string) error {
	for k := range h {
		if len(k) < 6 || !strings.EqualFold(k[:6], "x-amz-") || strings.EqualFold(k, "x-amz-content-sha256") {
			continue
		}
		found := false
		for _, s := range signed {
			if strings.EqualFold(k, s) {
				found = true
				break
			}
		}
		if !found {
			return fmt.Errorf("%w: %s", ErrHeadersNotSigned, strings.ToLower(truncate(k)))
		}
	}
	return nil
}

// scopeKey identifies a derived signing key.
type scopeKey struct{ accessKeyID, date, region, service string }

func keyFor(c *credential) scopeKey {
	return scopeKey{c.accessKeyID, c.date, c.region, c.service}
}

// keyCache is a bounded map of derived signing keys. Entries remember a
// hash of the secret they were derived from, so a rotated secret misses
// instead of verifying with a stale key, without the cache holding secrets.
// Eviction is random (Go map order), which is enough for a working set of a
// few keys per client per day.
type keyCache struct {
	mu sync.Mutex
	// mu guards m.
	m map[scopeKey]cachedKey
}

type cachedKey struct {
	secretSum [32]byte
	key       [32]byte
}

func secretSum(secret string) [32]byte {
	var buf [128]byte
	if len(secret) <= len(buf) {
		return sha256.Sum256(append(buf[:0], secret...))
	}
	return sha256.Sum256([]byte(secret))
}

func (c *keyCache) lookup(k scopeKey, secret string) ([32]byte, bool) {
	sum := secretSum(secret)
	c.mu.Lock()
	e, ok := c.m[k]
	c.mu.Unlock()
	if !ok || e.secretSum != sum {
		return [32]byte{}, false
	}
	return e.key, true
}

// store is called only after a signature verified, so that requests with
// bad signatures cannot churn the cache.
func (c *keyCache) store(k scopeKey, secret string, key [32]byte) {
	// Clone: k's strings point into the request's headers.
	k = scopeKey{strings.Clone(k.accessKeyID), strings.Clone(k.date), strings.Clone(k.region), strings.Clone(k.service)}
	e := cachedKey{secretSum: secretSum(secret), key: key}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[scopeKey]cachedKey)
	}
	if _, ok := c.m[k]; !ok && len(c.m) >= keyCacheSize {
		for old := range c.m {
			delete(c.m, old)
			break
		}
	}
	c.m[k] = e
}
