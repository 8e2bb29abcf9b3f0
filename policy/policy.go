// Package policy decides who may do what: local credentials and their grants,
// and the virtual buckets clients see with their mapping to upstream buckets.
//
// A Policy is an immutable snapshot built from a Config and validated up
// front; it is safe for concurrent use and holds no I/O. Secrets never appear
// in String output, errors or logs.
package policy

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
)

// Errors returned by Policy lookups; the proxy maps them to S3 error codes.
var (
	ErrUnknownAccessKey = errors.New("policy: unknown access key")
	ErrAccessDenied     = errors.New("policy: access denied")
	ErrNoSuchBucket     = errors.New("policy: no such bucket")
)

// Action is a set of permissions a grant gives.
type Action uint8

// The actions a grant may give.
const (
	Read   Action = 1 << iota // GetObject, HeadObject, ACL reads
	Write                     // PutObject, CopyObject (destination), multipart
	List                      // ListObjects, ListMultipartUploads, ListParts
	Delete                    // DeleteObject, DeleteObjects, AbortMultipartUpload
)

var actionNames = []struct {
	a    Action
	name string
}{{Read, "read"}, {Write, "write"}, {List, "list"}, {Delete, "delete"}}

// ParseAction parses an action name of the configuration.
func ParseAction(s string) (Action, error) {
	for _, an := range actionNames {
		if an.name == s {
			return an.a, nil
		}
	}
	return 0, fmt.Errorf("policy: unknown action %q (want read, write, list or delete)", s)
}

func (a Action) String() string {
	var names []string
	for _, an := range actionNames {
		if a&an.a != 0 {
			names = append(names, an.name)
		}
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ",")
}

// Config is the plain description a Policy is built from.
type Config struct {
	// Buckets are the virtual buckets clients see, by name.
	Buckets map[string]Bucket
	// Credentials are the local access keys.
	Credentials []Credential
}

// Bucket maps a virtual bucket to a place at an upstream.
type Bucket struct {
	Upstream string // name of the upstream in the configuration
	Bucket   string // bucket name at the upstream
	Prefix   string // key prefix inside it, prepended verbatim
	// PublicReadPrefixes are key prefixes anyone may read without signing.
	PublicReadPrefixes []string
	// Cache is how the bucket's objects are cached.
	Cache CacheRule
}

// CacheMode says whether and how a bucket's objects are cached.
type CacheMode uint8

// The cache modes. The zero value, immutable, suits Synapse's media keys,
// which never change once written.
const (
	CacheImmutable  CacheMode = iota // cached, never revalidated
	CacheRevalidate                  // cached, revalidated after TTL
	CacheOff                         // passed through, never stored
)

func (m CacheMode) String() string {
	switch m {
	case CacheImmutable:
		return "immutable"
	case CacheRevalidate:
		return "revalidate"
	case CacheOff:
		return "off"
	}
	return "unknown"
}

// CacheRule is a bucket's caching rule.
type CacheRule struct {
	Mode CacheMode
	// TTL is how long a revalidate-mode entry is served before it is
	// checked with the upstream again.
	TTL time.Duration
	// StaleIfError serves a revalidate-mode entry whose revalidation failed
	// (the upstream is down) instead of failing the request.
	StaleIfError bool
	// SSEC caches objects read with SSE-C customer keys. Their plaintext is
	// then stored on local disk, each entry served only to requests that
	// present the key it was read with.
	SSEC bool
}

// Credential is one local access key and what it may do.
type Credential struct {
	AccessKeyID     string
	SecretAccessKey string
	Grants          []Grant
}

// Grant gives actions on the keys of a bucket that start with Prefix.
type Grant struct {
	Bucket  string
	Prefix  string
	Actions Action
}

// Principal is an authenticated caller (or the anonymous one).
type Principal struct {
	AccessKeyID string // "" for anonymous
	secret      string
	grants      []Grant
}

// Anonymous reports whether the caller did not sign the request.
func (p *Principal) Anonymous() bool { return p.AccessKeyID == "" }

func (p *Principal) String() string {
	if p.Anonymous() {
		return "anonymous"
	}
	return p.AccessKeyID
}

// Policy is an immutable, validated snapshot of buckets and credentials.
type Policy struct {
	buckets    map[string]Bucket
	names      []string // sorted bucket names
	principals map[string]*Principal
	anonymous  *Principal
}

// New validates cfg and builds a Policy.
func New(cfg Config) (*Policy, error) {
	p := &Policy{
		buckets:    make(map[string]Bucket, len(cfg.Buckets)),
		principals: make(map[string]*Principal, len(cfg.Credentials)),
	}
	for name, b := range cfg.Buckets {
		if err := ValidBucketName(name); err != nil {
			return nil, fmt.Errorf("policy: bucket %q: %w", name, err)
		}
		if b.Upstream == "" {
			return nil, fmt.Errorf("policy: bucket %q: no upstream", name)
		}
		if b.Bucket == "" {
			b.Bucket = name
		}
		if b.Prefix != "" && !strings.HasSuffix(b.Prefix, "/") {
			return nil, fmt.Errorf("policy: bucket %q: prefix %q must end with '/' (else it would share keys with prefixes that extend it)", name, b.Prefix)
		}
		b.PublicReadPrefixes = slices.Clone(b.PublicReadPrefixes)
		p.buckets[name] = b
		p.names = append(p.names, name)
	}
	sort.Strings(p.names)

	if err := checkOverlap(p.buckets, p.names); err != nil {
		return nil, err
	}

	anon := &Principal{}
	for _, name := range p.names {
		for _, pre := range p.buckets[name].PublicReadPrefixes {
			anon.grants = append(anon.grants, Grant{Bucket: name, Prefix: pre, Actions: Read})
		}
	}
	p.anonymous = anon

	for i, c := range cfg.Credentials {
		switch {
		case c.AccessKeyID == "":
			return nil, fmt.Errorf("policy: credential %d: empty access_key_id", i+1)
		case len(c.AccessKeyID) > 128 || strings.ContainsAny(c.AccessKeyID, "/ ,=\t\r\n"):
			return nil, fmt.Errorf("policy: credential %q: access_key_id may not contain '/', ',', '=' or spaces", c.AccessKeyID)
		case len(c.SecretAccessKey) < 8:
			// The secret is not echoed: it may have been pasted wrongly.
			return nil, fmt.Errorf("policy: credential %q: secret_access_key shorter than 8 characters", c.AccessKeyID)
		}
		if _, dup := p.principals[c.AccessKeyID]; dup {
			return nil, fmt.Errorf("policy: credential %q defined twice", c.AccessKeyID)
		}
		for _, g := range c.Grants {
			if _, ok := p.buckets[g.Bucket]; !ok {
				return nil, fmt.Errorf("policy: credential %q: grant on unknown bucket %q", c.AccessKeyID, g.Bucket)
			}
			if g.Actions == 0 {
				return nil, fmt.Errorf("policy: credential %q: grant on %q gives no action", c.AccessKeyID, g.Bucket)
			}
		}
		p.principals[c.AccessKeyID] = &Principal{
			AccessKeyID: c.AccessKeyID,
			secret:      c.SecretAccessKey,
			grants:      slices.Clone(c.Grants),
		}
	}
	return p, nil
}

// checkOverlap refuses two virtual buckets whose keys would meet at the
// upstream: the same upstream bucket where one prefix contains the other.
// Tenant isolation must not rest on how keys happen to be named.
func checkOverlap(buckets map[string]Bucket, names []string) error {
	for i, a := range names {
		for _, b := range names[i+1:] {
			x, y := buckets[a], buckets[b]
			if x.Upstream == y.Upstream && x.Bucket == y.Bucket &&
				(strings.HasPrefix(x.Prefix, y.Prefix) || strings.HasPrefix(y.Prefix, x.Prefix)) {
				return fmt.Errorf("policy: buckets %q and %q overlap in upstream %s bucket %s (prefixes %q and %q)",
					a, b, x.Upstream, x.Bucket, x.Prefix, y.Prefix)
			}
		}
	}
	return nil
}

// ValidBucketName checks the S3 bucket naming rules that matter for
// addressing: 3-63 characters of lower-case letters, digits, '.' and '-',
// starting and ending with a letter or digit.
func ValidBucketName(name string) error {
	if len(name) < 3 || len(name) > 63 {
		return errors.New("bucket names have 3 to 63 characters")
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		alnum := c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
		if !alnum && c != '.' && c != '-' {
			return errors.New("bucket names use only a-z, 0-9, '.' and '-'")
		}
		if (i == 0 || i == len(name)-1) && !alnum {
			return errors.New("bucket names start and end with a letter or digit")
		}
	}
	return nil
}

// Secret returns the secret of an access key, for signature verification.
func (p *Policy) Secret(accessKeyID string) (string, error) {
	pr, ok := p.principals[accessKeyID]
	if !ok {
		return "", ErrUnknownAccessKey
	}
	return pr.secret, nil
}

// Principal returns the caller that owns accessKeyID; "" is the anonymous one.
func (p *Policy) Principal(accessKeyID string) (*Principal, error) {
	if accessKeyID == "" {
		return p.anonymous, nil
	}
	pr, ok := p.principals[accessKeyID]
	if !ok {
		return nil, ErrUnknownAccessKey
	}
	return pr, nil
}

// Bucket returns the mapping of a virtual bucket.
func (p *Policy) Bucket(name string) (Bucket, error) {
	b, ok := p.buckets[name]
	if !ok {
		return Bucket{}, ErrNoSuchBucket
	}
	return b, nil
}

// BucketNames returns every virtual bucket name, sorted.
func (p *Policy) BucketNames() []string { return slices.Clone(p.names) }

// VisibleBuckets returns the sorted names of the buckets pr has any grant on.
func (p *Policy) VisibleBuckets(pr *Principal) []string {
	var out []string
	for _, name := range p.names {
		if slices.ContainsFunc(pr.grants, func(g Grant) bool { return g.Bucket == name }) {
			out = append(out, name)
		}
	}
	return out
}

// Authorize reports whether pr may do a on key in bucket; for bucket-level
// checks (listing, HeadBucket) pass the listing prefix as key.
func (p *Policy) Authorize(pr *Principal, bucket, key string, a Action) error {
	for _, g := range pr.grants {
		if g.Bucket == bucket && g.Actions&a == a && strings.HasPrefix(key, g.Prefix) {
			return nil
		}
	}
	return ErrAccessDenied
}

// CanAccessBucket reports whether pr has any grant on bucket that gives a
// (with any prefix): enough to start a listing, which is then filtered.
func (p *Policy) CanAccessBucket(pr *Principal, bucket string, a Action) bool {
	return slices.ContainsFunc(pr.grants, func(g Grant) bool {
		return g.Bucket == bucket && g.Actions&a == a
	})
}

// ListScope narrows a listing of bucket under prefix to what pr may see. It
// returns the prefix to list upstream, or ok=false when pr can see nothing
// there. When one grant covers everything visible, the result is that
// grant's prefix, so that every key listed is visible; a delimiter inside
// the grant's prefix keeps the requested prefix, because listing deeper would
// change the common prefixes the caller sees.
func (p *Policy) ListScope(pr *Principal, bucket, prefix, delim string) (scope string, ok bool) {
	var narrower []string
	for _, g := range pr.grants {
		if g.Bucket != bucket || g.Actions&List == 0 {
			continue
		}
		if strings.HasPrefix(prefix, g.Prefix) {
			return prefix, true
		}
		if strings.HasPrefix(g.Prefix, prefix) {
			narrower = append(narrower, g.Prefix)
		}
	}
	switch {
	case len(narrower) == 0:
		return "", false
	case len(narrower) == 1 && (delim == "" || !strings.Contains(narrower[0][len(prefix):], delim)):
		return narrower[0], true
	}
	return prefix, true
}

// Visible reports whether a listed key of bucket may be shown to pr.
func (p *Policy) Visible(pr *Principal, bucket, key string) bool {
	return p.Authorize(pr, bucket, key, List) == nil
}

// VisiblePrefix reports whether a common prefix of a listing may be shown:
// true when some list grant covers it, or lies inside it.
func (p *Policy) VisiblePrefix(pr *Principal, bucket, prefix string) bool {
	return slices.ContainsFunc(pr.grants, func(g Grant) bool {
		return g.Bucket == bucket && g.Actions&List != 0 &&
			(strings.HasPrefix(prefix, g.Prefix) || strings.HasPrefix(g.Prefix, prefix))
	})
}
