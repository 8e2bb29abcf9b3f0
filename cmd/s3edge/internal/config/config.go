// Package config reads s3edge's YAML configuration file strictly: an unknown
// or misspelt key is an error naming the key and its line, ${VAR} references
// are expanded from the environment on parsed values (never on raw text),
// sizes take units and durations are Go-style. Validate checks everything up
// front and names the key of every problem. Secrets are of type Secret and
// never print themselves.
//
// Only cmd/s3edge reads configuration; it turns a Config into the plain
// Config structs of policy, upstream and proxy.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Config is the whole configuration file. Its YAML names are the contract:
// keys may be added, never renamed.
type Config struct {
	// Listen is the S3 endpoint's address, host:port.
	Listen string `yaml:"listen"`
	// DataDir holds the spool, the cache, ACME state, embedded upstreams
	// and the demo credentials.
	DataDir string `yaml:"data_dir"`
	// Region is what GetBucketLocation reports and clients sign with.
	Region string `yaml:"region"`
	// BaseDomains enable virtual-host style addressing (bucket.domain).
	BaseDomains []string `yaml:"base_domains"`
	// TLS serves https with a static certificate or ACME.
	TLS TLS `yaml:"tls"`
	// Log configures the log on stderr.
	Log Log `yaml:"log"`
	// MetricsListen serves Prometheus /metrics on its own address; empty
	// means off.
	MetricsListen string `yaml:"metrics_listen"`
	// Limits bound requests and connections.
	Limits Limits `yaml:"limits"`
	// Upstreams are the providers, by a name buckets refer to.
	Upstreams map[string]Upstream `yaml:"upstreams"`
	// Buckets are the virtual buckets clients see, by name.
	Buckets map[string]Bucket `yaml:"buckets"`
	// Credentials are the local access keys and their grants.
	Credentials []Credential `yaml:"credentials"`
	// Cache sizes the disk cache.
	Cache Cache `yaml:"cache"`

	source string         // file name for messages; "" for defaults
	lines  map[string]int // key path → line in source
}

// TLS selects https. With neither a certificate nor ACME domains the
// endpoint is plain http.
type TLS struct {
	CertFile    string   `yaml:"cert_file"`
	KeyFile     string   `yaml:"key_file"`
	ACMEDomains []string `yaml:"acme_domains"`
	ACMEEmail   string   `yaml:"acme_email"`
	ACMECA      string   `yaml:"acme_ca"`
}

// Enabled reports whether the endpoint serves https.
func (t TLS) Enabled() bool { return t.CertFile != "" || len(t.ACMEDomains) > 0 }

// Log configures logging.
type Log struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // text, json
}

// Limits bound what one request or connection may take.
type Limits struct {
	MaxObjectSize     Size     `yaml:"max_object_size"`
	MaxHeaderBytes    Size     `yaml:"max_header_bytes"`
	StallTimeout      Duration `yaml:"stall_timeout"`
	ReadHeaderTimeout Duration `yaml:"read_header_timeout"`
	IdleTimeout       Duration `yaml:"idle_timeout"`
	ShutdownTimeout   Duration `yaml:"shutdown_timeout"`
	// MemorySpool is how many bytes of uploads may wait in memory while
	// the spool directory cannot take them (0: none).
	MemorySpool Size `yaml:"memory_spool"`
	// GCHeapFloor is the heap size below which the garbage collector does
	// not run (0: Go's own pacing).
	GCHeapFloor Size `yaml:"gc_heap_floor"`
}

// Upstream types.
const (
	TypeS3       = "s3"
	TypeEmbedded = "embedded"
)

// Upstream is one provider.
type Upstream struct {
	Type                       string   `yaml:"type"`
	Endpoint                   string   `yaml:"endpoint"`
	Region                     string   `yaml:"region"`
	AccessKeyID                string   `yaml:"access_key_id"`
	SecretAccessKey            Secret   `yaml:"secret_access_key"`
	PathStyle                  bool     `yaml:"path_style"`
	RequestChecksumCalculation string   `yaml:"request_checksum_calculation"`
	ResponseChecksumValidation string   `yaml:"response_checksum_validation"`
	ConnectTimeout             Duration `yaml:"connect_timeout"`
	ResponseHeaderTimeout      Duration `yaml:"response_header_timeout"`
	IdleConnTimeout            Duration `yaml:"idle_conn_timeout"`
	MaxConnections             int      `yaml:"max_connections"`
	MaxAttempts                int      `yaml:"max_attempts"`
	MaxBackoff                 Duration `yaml:"max_backoff"`
}

// Bucket is a virtual bucket.
type Bucket struct {
	Upstream           string      `yaml:"upstream"`
	Bucket             string      `yaml:"bucket"`
	Prefix             string      `yaml:"prefix"`
	PublicReadPrefixes []string    `yaml:"public_read_prefixes"`
	Cache              BucketCache `yaml:"cache"`
}

// Cache modes of a bucket.
const (
	CacheImmutable  = "immutable"
	CacheRevalidate = "revalidate"
	CacheOff        = "off"
)

// BucketCache is a bucket's caching rule.
type BucketCache struct {
	Mode string   `yaml:"mode"`
	TTL  Duration `yaml:"ttl"`
	// StaleIfError serves a revalidate-mode entry whose revalidation
	// failed instead of failing the request.
	StaleIfError bool `yaml:"stale_if_error"`
	// SSEC caches SSE-C objects (their plaintext lands on local disk).
	SSEC bool `yaml:"sse_c"`
	// Weight is the bucket's share of the cache under pressure (default 1).
	Weight float64 `yaml:"weight"`
	// MaxSize caps the bucket's bytes in the cache (0: no cap).
	MaxSize Size `yaml:"max_size"`
}

// Credential is one local access key.
type Credential struct {
	AccessKeyID     string  `yaml:"access_key_id"`
	SecretAccessKey Secret  `yaml:"secret_access_key"`
	Grants          []Grant `yaml:"grants"`
}

// Grant gives actions on the keys of a bucket under a prefix.
type Grant struct {
	Bucket  string   `yaml:"bucket"`
	Prefix  string   `yaml:"prefix"`
	Actions []string `yaml:"actions"`
}

// Cache sizes the disk cache.
type Cache struct {
	MaxSize       Size `yaml:"max_size"`
	MinFreeDisk   Size `yaml:"min_free_disk"`
	MaxObjectSize Size `yaml:"max_object_size"`
	// Dir holds the cache (default <data_dir>/cache); it may be another disk.
	Dir string `yaml:"dir"`
	// SliceSize is the unit large objects and ranges are stored in.
	SliceSize Size `yaml:"slice_size"`
	// Admission: tinylfu (default), second-hit or all.
	Admission string `yaml:"admission"`
	// FillTimeout bounds one upstream fetch into the cache (0: none).
	FillTimeout Duration `yaml:"fill_timeout"`
	// MissTimeout bounds a client's wait for the upstream's first answer
	// to a miss (0: none).
	MissTimeout Duration `yaml:"miss_timeout"`
	// XCacheHeader sends X-Cache: HIT|MISS|COALESCED|BYPASS|STALE (default true).
	XCacheHeader *bool `yaml:"x_cache_header"`
	// HitPath answers cache hits on plain HTTP without net/http (default
	// true); false serves every request through net/http.
	HitPath *bool `yaml:"hit_path"`
}

// Defaults of the settings that have one.
const (
	DefaultListen   = "127.0.0.1:9000"
	DefaultDataDir  = "./s3edge-data"
	DefaultRegion   = "us-east-1"
	DefaultChecksum = "when_required"
)

// Default returns the configuration used without a file: the embedded demo.
func Default() *Config {
	return &Config{
		Listen:  DefaultListen,
		DataDir: DefaultDataDir,
		Region:  DefaultRegion,
		Log:     Log{Level: "info", Format: "text"},
		Limits: Limits{
			MaxObjectSize:     5 << 30,
			MaxHeaderBytes:    64 << 10,
			StallTimeout:      Duration(120 * time.Second),
			ReadHeaderTimeout: Duration(10 * time.Second),
			IdleTimeout:       Duration(120 * time.Second),
			ShutdownTimeout:   Duration(30 * time.Second),
			MemorySpool:       64 << 20,
			GCHeapFloor:       64 << 20,
		},
		Cache: Cache{MaxSize: 10 << 30, MinFreeDisk: 1 << 30, MaxObjectSize: 1 << 30, SliceSize: 4 << 20, Admission: "tinylfu",
			MissTimeout: Duration(30 * time.Second)},
		lines: map[string]int{},
	}
}

// Load reads the file at path, expanding ${VAR} from the process
// environment. It does not validate; call Validate after any overrides.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(path, data, os.LookupEnv)
}

// Parse parses YAML data over the defaults; name labels errors. Every
// unknown key, bad value and unset variable is reported, each with its line.
func Parse(name string, data []byte, lookup LookupFunc) (*Config, error) {
	c := Default()
	c.source = name
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return c, nil // an empty file is the defaults
		}
		return nil, fmt.Errorf("%s: %s", name, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: line %d: only one YAML document is allowed", name, extra.Line)
	}
	if len(doc.Content) == 0 {
		return c, nil
	}
	root := doc.Content[0]
	w := &walker{lookup: lookup, lines: c.lines, expanded: map[*yaml.Node]bool{}}
	if root.Kind == yaml.ScalarNode && root.ShortTag() == "!!null" {
		return c, nil
	}
	if root.Kind != yaml.MappingNode {
		w.errorf(root.Line, "(top level)", "want a mapping of keys to values, got %s", kindName(root))
	} else {
		w.walk(root, reflect.TypeFor[Config](), "")
	}
	if len(w.errs) > 0 {
		return nil, c.prefixed(w.errs)
	}
	if err := root.Decode(c); err != nil {
		// The walker checked keys and values; this is a safety net.
		return nil, fmt.Errorf("%s: %s", name, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	return c, nil
}

// prefixed joins errs, each prefixed with the file name.
func (c *Config) prefixed(errs []error) error {
	if c.source == "" {
		return errors.Join(errs...)
	}
	out := make([]error, len(errs))
	for i, err := range errs {
		out[i] = fmt.Errorf("%s: %w", c.source, err)
	}
	return errors.Join(out...)
}

// Overrides are command-line settings that win over the file.
type Overrides struct {
	Listen, DataDir, LogLevel string
}

// Apply sets the non-empty overrides.
func (c *Config) Apply(o Overrides) {
	set := func(dst *string, v, path string) {
		if v != "" {
			*dst = v
			delete(c.lines, path) // messages about it then name the flag's key, not a line
		}
	}
	set(&c.Listen, o.Listen, "listen")
	set(&c.DataDir, o.DataDir, "data_dir")
	set(&c.Log.Level, o.LogLevel, "log.level")
}

// Source is the file the configuration came from, or "" for the defaults.
func (c *Config) Source() string { return c.source }

// Demo reports whether nothing is configured to serve: no upstream, no
// bucket and no credential. s3edge then runs the embedded demo.
func (c *Config) Demo() bool {
	return len(c.Upstreams) == 0 && len(c.Buckets) == 0 && len(c.Credentials) == 0
}

// Demo names.
const (
	DemoUpstream = "demo"
	DemoBucket   = "media"
)

// SetDemo configures the embedded demo: upstream "demo" of type
// embedded, bucket "media" on it, and one credential with every action on
// it.
func (c *Config) SetDemo(accessKeyID string, secret Secret) {
	c.Upstreams = map[string]Upstream{DemoUpstream: {Type: TypeEmbedded}}
	c.Buckets = map[string]Bucket{DemoBucket: {
		Upstream: DemoUpstream, Bucket: DemoBucket, Cache: BucketCache{Mode: CacheImmutable},
	}}
	c.Credentials = []Credential{{
		AccessKeyID:     accessKeyID,
		SecretAccessKey: secret,
		Grants: []Grant{{
			Bucket: DemoBucket, Actions: []string{"read", "write", "list", "delete"},
		}},
	}}
}

// UpstreamBuckets returns the upstream buckets that the virtual buckets map
// to on upstream name, sorted and without repeats.
func (c *Config) UpstreamBuckets(name string) []string {
	seen := map[string]bool{}
	var out []string
	for _, vb := range sortedKeys(c.Buckets) {
		b := c.Buckets[vb]
		if b.Upstream != name {
			continue
		}
		ub := b.Bucket
		if ub == "" {
			ub = vb
		}
		if !seen[ub] {
			seen[ub] = true
			out = append(out, ub)
		}
	}
	return out
}

// Dump renders the configuration as YAML with every secret redacted.
func (c *Config) Dump() ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(c); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
