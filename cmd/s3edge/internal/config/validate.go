package config

import (
	"cmp"
	"fmt"
	"maps"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/s3edge/s3edge/policy"
)

// validator collects problems, each named by its key path and, when the
// value came from the file, its line.
type validator struct {
	c    *Config
	errs []error
}

func (v *validator) errorf(path, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if line, ok := v.c.lines[path]; ok && line > 0 {
		v.errs = append(v.errs, fmt.Errorf("line %d: %s: %s", line, path, msg))
		return
	}
	v.errs = append(v.errs, fmt.Errorf("%s: %s", path, msg))
}

// Validate checks the whole configuration and fills in the defaults that
// depend on other keys (an upstream's type, a bucket's upstream name and
// cache mode). It reports every problem it finds, each naming its key.
// Secrets are never part of a message.
func (c *Config) Validate() error {
	v := &validator{c: c}
	v.address("listen", c.Listen, false)
	v.address("metrics_listen", c.MetricsListen, true)
	if c.MetricsListen != "" && c.MetricsListen == c.Listen && !strings.HasSuffix(c.Listen, ":0") {
		v.errorf("metrics_listen", "must differ from listen")
	}
	if strings.TrimSpace(c.DataDir) == "" {
		v.errorf("data_dir", "must not be empty")
	}
	if !validRegion(c.Region) {
		v.errorf("region", "want a region name such as us-east-1 (lower-case letters, digits and -)")
	}
	for i, d := range c.BaseDomains {
		d = strings.ToLower(strings.TrimSuffix(d, "."))
		c.BaseDomains[i] = d
		if !validHostname(d) {
			v.errorf(fmt.Sprintf("base_domains[%d]", i), "%q is not a host name (no scheme, port or path)", d)
		}
	}
	v.tls()
	v.oneOf("log.level", c.Log.Level, "debug", "info", "warn", "error")
	v.oneOf("log.format", c.Log.Format, "text", "json")
	v.limits()
	v.cache()

	if c.Demo() {
		return c.prefixed(v.errs)
	}
	if len(c.Upstreams) == 0 {
		v.errorf("upstreams", "none configured (buckets need one)")
	}
	for _, name := range sortedKeys(c.Upstreams) {
		v.upstream(name)
	}
	if len(c.Buckets) == 0 {
		v.errorf("buckets", "none configured")
	}
	for _, name := range sortedKeys(c.Buckets) {
		v.bucket(name)
	}
	v.credentials()
	return c.prefixed(v.errs)
}

func (v *validator) address(path, addr string, optional bool) {
	if addr == "" {
		if !optional {
			v.errorf(path, "must not be empty (want host:port, such as 127.0.0.1:9000)")
		}
		return
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		v.errorf(path, "%q is not host:port (such as 127.0.0.1:9000 or [::1]:9000)", addr)
		return
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		v.errorf(path, "%q: port must be a number from 0 to 65535", addr)
	}
}

func (v *validator) oneOf(path, val string, allowed ...string) {
	if !slices.Contains(allowed, val) {
		v.errorf(path, "%q is not one of %s", val, strings.Join(allowed, ", "))
	}
}

func (v *validator) tls() {
	t := v.c.TLS
	if (t.CertFile == "") != (t.KeyFile == "") {
		v.errorf("tls", "cert_file and key_file go together")
	}
	if t.CertFile != "" && len(t.ACMEDomains) > 0 {
		v.errorf("tls.acme_domains", "use either acme_domains or cert_file/key_file, not both")
	}
	for i, d := range t.ACMEDomains {
		if !validHostname(strings.TrimPrefix(d, "*.")) {
			v.errorf(fmt.Sprintf("tls.acme_domains[%d]", i), "%q is not a host name", d)
		}
	}
	if len(t.ACMEDomains) == 0 && (t.ACMEEmail != "" || t.ACMECA != "") {
		v.errorf("tls.acme_domains", "acme_email and acme_ca need acme_domains")
	}
	if len(t.ACMEDomains) > 0 && t.ACMEEmail == "" {
		// Without one, certmagic would prompt for it on stdin.
		v.errorf("tls.acme_email", "required with acme_domains: the contact address of the ACME account")
	}
	if t.ACMEEmail != "" && !strings.Contains(t.ACMEEmail, "@") {
		v.errorf("tls.acme_email", "%q is not an email address", t.ACMEEmail)
	}
	if t.ACMECA != "" {
		if u, err := url.Parse(t.ACMECA); err != nil || u.Scheme != "https" || u.Host == "" {
			v.errorf("tls.acme_ca", "want the https URL of an ACME directory")
		}
	}
}

func (v *validator) limits() {
	l := v.c.Limits
	if l.MaxObjectSize <= 0 {
		v.errorf("limits.max_object_size", "must be positive")
	}
	if l.MaxHeaderBytes < 4<<10 || l.MaxHeaderBytes > 16<<20 {
		v.errorf("limits.max_header_bytes", "must be from 4KiB to 16MiB")
	}
	for _, d := range []struct {
		path string
		d    Duration
	}{
		{"limits.stall_timeout", l.StallTimeout}, {"limits.read_header_timeout", l.ReadHeaderTimeout},
		{"limits.idle_timeout", l.IdleTimeout}, {"limits.shutdown_timeout", l.ShutdownTimeout},
	} {
		if d.d <= 0 {
			v.errorf(d.path, "must be positive")
		}
	}
}

func (v *validator) cache() {
	c := &v.c.Cache
	if c.MaxSize > 0 && c.MaxObjectSize > c.MaxSize {
		v.errorf("cache.max_object_size", "%s exceeds cache.max_size %s", c.MaxObjectSize, c.MaxSize)
	}
	c.Admission = cmp.Or(c.Admission, "tinylfu")
	v.oneOf("cache.admission", c.Admission, "tinylfu", "second-hit", "all")
	if c.SliceSize < 0 || c.SliceSize > 0 && c.SliceSize < 64<<10 {
		v.errorf("cache.slice_size", "%s is below 64KiB", c.SliceSize)
	}
}

func (v *validator) upstream(name string) {
	u := v.c.Upstreams[name]
	p := "upstreams." + name
	if !validName(name) {
		v.errorf(p, "upstream names use a-z, 0-9, - and _")
	}
	u.Type = cmp.Or(u.Type, TypeS3)
	switch u.Type {
	case TypeS3:
		u.RequestChecksumCalculation = cmp.Or(u.RequestChecksumCalculation, DefaultChecksum)
		u.ResponseChecksumValidation = cmp.Or(u.ResponseChecksumValidation, DefaultChecksum)
		v.oneOf(p+".request_checksum_calculation", u.RequestChecksumCalculation, "when_required", "when_supported")
		v.oneOf(p+".response_checksum_validation", u.ResponseChecksumValidation, "when_required", "when_supported")
		if u.Endpoint != "" {
			e, err := url.Parse(u.Endpoint)
			switch {
			case err != nil || (e.Scheme != "http" && e.Scheme != "https") || e.Host == "":
				v.errorf(p+".endpoint", "want http(s)://host[:port][/path]")
			case e.User != nil:
				v.errorf(p+".endpoint", "must not contain credentials (use access_key_id and secret_access_key)")
			case e.RawQuery != "" || e.Fragment != "":
				v.errorf(p+".endpoint", "must not have a query or fragment")
			}
		}
		if u.Region != "" && !validRegion(u.Region) {
			v.errorf(p+".region", "want a region name such as us-west-002")
		}
		switch {
		case u.AccessKeyID != "" && u.SecretAccessKey == "":
			v.errorf(p+".secret_access_key", "missing (access_key_id is set; is its environment variable empty?)")
		case u.AccessKeyID == "" && u.SecretAccessKey != "":
			v.errorf(p+".access_key_id", "missing (secret_access_key is set)")
		}
		if u.MaxConnections < 0 {
			v.errorf(p+".max_connections", "must not be negative")
		}
		if u.MaxAttempts < 0 || u.MaxAttempts > 20 {
			v.errorf(p+".max_attempts", "must be from 0 (the default, 3) to 20")
		}
	case TypeEmbedded:
		for _, f := range []struct {
			key string
			set bool
		}{
			{"endpoint", u.Endpoint != ""}, {"region", u.Region != ""},
			{"access_key_id", u.AccessKeyID != ""}, {"secret_access_key", u.SecretAccessKey != ""},
			{"path_style", u.PathStyle},
			{"request_checksum_calculation", u.RequestChecksumCalculation != ""},
			{"response_checksum_validation", u.ResponseChecksumValidation != ""},
			{"connect_timeout", u.ConnectTimeout != 0}, {"response_header_timeout", u.ResponseHeaderTimeout != 0},
			{"idle_conn_timeout", u.IdleConnTimeout != 0}, {"max_connections", u.MaxConnections != 0},
			{"max_attempts", u.MaxAttempts != 0}, {"max_backoff", u.MaxBackoff != 0},
		} {
			if f.set {
				v.errorf(p+"."+f.key, "not used by type embedded")
			}
		}
	default:
		v.errorf(p+".type", "%q is not one of s3, embedded", u.Type)
	}
	v.c.Upstreams[name] = u
}

func (v *validator) bucket(name string) {
	b := v.c.Buckets[name]
	p := "buckets." + name
	if err := policy.ValidBucketName(name); err != nil {
		v.errorf(p, "%v", err)
	}
	switch {
	case b.Upstream == "" && len(v.c.Upstreams) == 1:
		b.Upstream = sortedKeys(v.c.Upstreams)[0]
	case b.Upstream == "":
		v.errorf(p+".upstream", "missing (one of %s)", strings.Join(sortedKeys(v.c.Upstreams), ", "))
	default:
		if _, ok := v.c.Upstreams[b.Upstream]; !ok {
			v.errorf(p+".upstream", "unknown upstream %q (configured: %s)", b.Upstream, strings.Join(sortedKeys(v.c.Upstreams), ", "))
		}
	}
	b.Bucket = cmp.Or(b.Bucket, name)
	if len(b.Bucket) < 3 || len(b.Bucket) > 255 || strings.ContainsAny(b.Bucket, "/ \t\r\n") {
		v.errorf(p+".bucket", "%q is not a bucket name", b.Bucket)
	}
	if strings.HasPrefix(b.Prefix, "/") {
		v.errorf(p+".prefix", "must not start with / (keys have no leading slash)")
	}
	b.Cache.Mode = cmp.Or(b.Cache.Mode, CacheImmutable)
	v.oneOf(p+".cache.mode", b.Cache.Mode, CacheImmutable, CacheRevalidate, CacheOff)
	if b.Cache.Weight < 0 {
		v.errorf(p+".cache.weight", "must not be negative")
	}
	v.c.Buckets[name] = b
}

func (v *validator) credentials() {
	seen := map[string]int{}
	for i, c := range v.c.Credentials {
		p := fmt.Sprintf("credentials[%d]", i)
		switch {
		case c.AccessKeyID == "":
			v.errorf(p+".access_key_id", "missing")
		case len(c.AccessKeyID) > 128 || strings.ContainsAny(c.AccessKeyID, "/ ,=\t\r\n"):
			v.errorf(p+".access_key_id", "may not contain '/', ',', '=' or spaces, nor exceed 128 characters")
		}
		if j, dup := seen[c.AccessKeyID]; dup && c.AccessKeyID != "" {
			v.errorf(p+".access_key_id", "%q is already used by credentials[%d]", c.AccessKeyID, j)
		}
		seen[c.AccessKeyID] = i
		switch {
		case c.SecretAccessKey == "":
			v.errorf(p+".secret_access_key", "missing (is its environment variable empty?)")
		case len(c.SecretAccessKey) < 8:
			v.errorf(p+".secret_access_key", "shorter than 8 characters")
		}
		if len(c.Grants) == 0 {
			v.errorf(p+".grants", "none: this key could do nothing")
		}
		for j, g := range c.Grants {
			gp := fmt.Sprintf("%s.grants[%d]", p, j)
			if _, ok := v.c.Buckets[g.Bucket]; !ok {
				v.errorf(gp+".bucket", "unknown bucket %q (configured: %s)", g.Bucket, strings.Join(sortedKeys(v.c.Buckets), ", "))
			}
			if len(g.Actions) == 0 {
				v.errorf(gp+".actions", "none (want some of read, write, list, delete)")
			}
			for k, a := range g.Actions {
				if _, err := policy.ParseAction(a); err != nil {
					v.errorf(fmt.Sprintf("%s.actions[%d]", gp, k), "unknown action %q (want read, write, list or delete)", a)
				}
			}
		}
	}
}

// Policy returns the policy configuration; call it after Validate.
func (c *Config) Policy() policy.Config {
	pc := policy.Config{Buckets: make(map[string]policy.Bucket, len(c.Buckets))}
	for name, b := range c.Buckets {
		pc.Buckets[name] = policy.Bucket{
			Upstream:           b.Upstream,
			Bucket:             b.Bucket,
			Prefix:             b.Prefix,
			PublicReadPrefixes: slices.Clone(b.PublicReadPrefixes),
			Cache: policy.CacheRule{
				Mode:         cacheModes[b.Cache.Mode],
				TTL:          b.Cache.TTL.D(),
				StaleIfError: b.Cache.StaleIfError,
				SSEC:         b.Cache.SSEC,
			},
		}
	}
	for _, cr := range c.Credentials {
		pcr := policy.Credential{AccessKeyID: cr.AccessKeyID, SecretAccessKey: string(cr.SecretAccessKey)}
		for _, g := range cr.Grants {
			var acts policy.Action
			for _, a := range g.Actions {
				act, err := policy.ParseAction(a)
				if err == nil {
					acts |= act
				}
			}
			pcr.Grants = append(pcr.Grants, policy.Grant{Bucket: g.Bucket, Prefix: g.Prefix, Actions: acts})
		}
		pc.Credentials = append(pc.Credentials, pcr)
	}
	return pc
}

var cacheModes = map[string]policy.CacheMode{
	CacheImmutable: policy.CacheImmutable, CacheRevalidate: policy.CacheRevalidate, CacheOff: policy.CacheOff,
}

func validRegion(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
			return false
		}
	}
	return true
}

func validName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

func validHostname(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}
