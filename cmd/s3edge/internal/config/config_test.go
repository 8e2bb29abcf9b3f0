package config

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"
)

func env(kv ...string) LookupFunc {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(name string) (string, bool) { v, ok := m[name]; return v, ok }
}

// valid is a small complete configuration; tests append to or edit it.
const valid = `listen: 127.0.0.1:9000
upstreams:
  b2:
    endpoint: https://s3.example.com
    access_key_id: key
    secret_access_key: ${B2_SECRET}
buckets:
  media: {upstream: b2, bucket: upstream-media}
credentials:
  - access_key_id: synapse
    secret_access_key: ${SYNAPSE_SECRET}
    grants:
      - {bucket: media, actions: [read, write, list, delete]}
`

var validEnv = env("B2_SECRET", "b2-secret-value", "SYNAPSE_SECRET", "synapse-secret-value")

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		env  LookupFunc
		want []string // substrings of the error
	}{
		{"unknown top-level key", "listn: 127.0.0.1:1\n", nil,
			[]string{`cfg.yaml: line 1: listn: unknown key "listn" (did you mean "listen"?)`}},
		{"misspelt nested key", strings.Replace(valid, "    endpoint:", "    endpiont:", 1), validEnv,
			[]string{`line 4: upstreams.b2.endpiont: unknown key "endpiont" (did you mean "endpoint"?)`}},
		{"misspelt key in a list", strings.Replace(valid, "{bucket: media,", "{buckte: media,", 1), validEnv,
			[]string{`line 13: credentials[0].grants[0].buckte: unknown key "buckte" (did you mean "bucket"?)`}},
		{"unrelated key lists the valid ones", "limits: {color: red}\n", nil,
			[]string{`limits.color: unknown key "color" (valid keys: gc_heap_floor, idle_timeout, max_header_bytes, max_object_size, memory_spool, read_header_timeout, shutdown_timeout, stall_timeout)`}},
		{"every error is reported", "listn: x\nregoin: y\n", nil,
			[]string{`line 1: listn`, `line 2: regoin`}},
		{"unset variable", valid, env("B2_SECRET", "x"),
			[]string{`line 11: credentials[0].secret_access_key: environment variable SYNAPSE_SECRET is not set`}},
		{"unterminated reference", "region: ${REGION\n", nil, []string{"line 1: region: unterminated ${"}},
		{"bad variable name", "region: ${1X}\n", nil, []string{"line 1: region: invalid ${...}"}},
		{"bad size unit", "cache: {max_size: 50GB!}\n", nil,
			[]string{`line 1: cache.max_size: invalid size "50GB!": unknown unit "GB!"`}},
		{"size without number", "cache:\n  max_size: lots\n", nil,
			[]string{`line 2: cache.max_size: invalid size "lots"`}},
		{"fractional bytes", "cache: {max_size: 1.5}\n", nil, []string{"a fraction of a byte"}},
		{"negative size", "limits: {max_object_size: -1}\n", nil, []string{"limits.max_object_size: invalid size"}},
		{"duration without unit", "limits: {stall_timeout: 30}\n", nil,
			[]string{`line 1: limits.stall_timeout: invalid duration "30"`}},
		{"negative duration", "limits: {idle_timeout: -1s}\n", nil, []string{`invalid duration "-1s": negative`}},
		{"not a number", "upstreams: {b2: {max_connections: many}}\n", nil,
			[]string{"line 1: upstreams.b2.max_connections: want a whole number"}},
		{"not a bool", "upstreams: {b2: {path_style: maybe}}\n", nil,
			[]string{"upstreams.b2.path_style: want true or false"}},
		{"mapping expected", "tls: on\n", nil, []string{"line 1: tls: want a mapping of keys to values, got a single value"}},
		{"list expected", "base_domains: s3.example.com\n", nil, []string{"base_domains: want a list, got a single value"}},
		{"value expected", "listen: [a, b]\n", nil, []string{"listen: want a single value, got a list"}},
		{"duplicate key", "listen: a:1\nregion: x\nlisten: b:2\n", nil,
			[]string{`line 3: listen: key "listen" is set twice (first at line 1)`}},
		{"duplicate bucket", "buckets:\n  media: {}\n  media: {}\n", nil,
			[]string{`line 3: buckets: "media" is defined twice (first at line 2)`}},
		{"syntax error", "listen: [\n", nil, []string{"cfg.yaml: "}},
		{"two documents", "listen: a:1\n---\nlisten: b:2\n", nil, []string{"only one YAML document"}},
		{"top level not a mapping", "- a\n", nil, []string{"want a mapping"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lookup := tt.env
			if lookup == nil {
				lookup = env()
			}
			_, err := Parse("cfg.yaml", []byte(tt.yaml), lookup)
			if err == nil {
				t.Fatalf("Parse(%q) succeeded, want an error", tt.yaml)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Parse error = %q, want it to contain %q", err, w)
				}
			}
		})
	}
}

func TestParseValues(t *testing.T) {
	tests := []struct {
		name  string
		yaml  string
		env   LookupFunc
		check func(*Config) string // "" when fine, else what is wrong
	}{
		{"empty file is the demo", "", nil, func(c *Config) string {
			if !c.Demo() || c.Listen != DefaultListen || c.DataDir != DefaultDataDir {
				return fmt.Sprintf("demo %v listen %q data_dir %q", c.Demo(), c.Listen, c.DataDir)
			}
			return ""
		}},
		{"comment only file", "# nothing\n", nil, func(c *Config) string {
			if !c.Demo() {
				return "not demo"
			}
			return ""
		}},
		{"env expansion", valid, validEnv, func(c *Config) string {
			if s := c.Upstreams["b2"].SecretAccessKey; s != "b2-secret-value" {
				return fmt.Sprintf("b2 secret %q", string(s))
			}
			return ""
		}},
		{"default and escape", "region: ${REGION:-eu-west-1}\ndata_dir: /srv/$$HOME/${SUB:-x}\n", env("SUB", ""), func(c *Config) string {
			if c.Region != "eu-west-1" || c.DataDir != "/srv/$HOME/x" {
				return fmt.Sprintf("region %q data_dir %q", c.Region, c.DataDir)
			}
			return ""
		}},
		{"a lone dollar is kept", "data_dir: /a$b/c$\n", nil, func(c *Config) string {
			if c.DataDir != "/a$b/c$" {
				return fmt.Sprintf("data_dir %q", c.DataDir)
			}
			return ""
		}},
		{"a secret cannot inject keys", valid, env("B2_SECRET", "x\nlisten: 0.0.0.0:80\n", "SYNAPSE_SECRET", "a: b, c: [d]"), func(c *Config) string {
			if c.Listen != "127.0.0.1:9000" || c.Upstreams["b2"].SecretAccessKey != "x\nlisten: 0.0.0.0:80\n" ||
				c.Credentials[0].SecretAccessKey != "a: b, c: [d]" {
				return fmt.Sprintf("listen %q", c.Listen)
			}
			return ""
		}},
		{"a numeric secret stays a string", "credentials:\n  - secret_access_key: ${S}\n", env("S", "0012345678"), func(c *Config) string {
			if c.Credentials[0].SecretAccessKey != "0012345678" {
				return "secret changed"
			}
			return ""
		}},
		{"variables in typed values", "upstreams:\n  b2:\n    path_style: ${PS}\n    max_attempts: ${MA}\nlimits:\n  stall_timeout: ${ST}\n",
			env("PS", "true", "MA", "5", "ST", "2m"), func(c *Config) string {
				u := c.Upstreams["b2"]
				if !u.PathStyle || u.MaxAttempts != 5 || c.Limits.StallTimeout.D() != 2*time.Minute {
					return fmt.Sprintf("%+v %v", u, c.Limits.StallTimeout)
				}
				return ""
			}},
		{"sizes and durations", "limits: {max_object_size: 1.5GB, max_header_bytes: 10KB, stall_timeout: 1m30s}\ncache: {max_size: 512MiB, min_free_disk: 1048576, max_object_size: 64 KiB, miss_timeout: 5s}\n", nil, func(c *Config) string {
			l, ca := c.Limits, c.Cache
			if l.MaxObjectSize != 1_500_000_000 || l.MaxHeaderBytes != 10_000 || l.StallTimeout.D() != 90*time.Second ||
				ca.MaxSize != 512<<20 || ca.MinFreeDisk != 1<<20 || ca.MaxObjectSize != 64<<10 || ca.MissTimeout.D() != 5*time.Second {
				return fmt.Sprintf("%+v %+v", l, ca)
			}
			return ""
		}},
		{"partial limits keep the other defaults", "limits:\n  stall_timeout: 5s\nlog:\n", nil, func(c *Config) string {
			if c.Limits.StallTimeout.D() != 5*time.Second || c.Limits.IdleTimeout.D() != 120*time.Second || c.Log.Level != "info" {
				return fmt.Sprintf("%+v %+v", c.Limits, c.Log)
			}
			return ""
		}},
		{"anchors and merge keys", `upstreams:
  a: &base {endpoint: "https://${HOST}", path_style: true, max_attempts: 4}
  b:
    <<: *base
    max_attempts: 2
`, env("HOST", "s3.example.com"), func(c *Config) string {
			a, b := c.Upstreams["a"], c.Upstreams["b"]
			if a.Endpoint != "https://s3.example.com" || b.Endpoint != a.Endpoint || !b.PathStyle || a.MaxAttempts != 4 || b.MaxAttempts != 2 {
				return fmt.Sprintf("a %+v b %+v", a, b)
			}
			return ""
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lookup := tt.env
			if lookup == nil {
				lookup = env()
			}
			c, err := Parse("cfg.yaml", []byte(tt.yaml), lookup)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if msg := tt.check(c); msg != "" {
				t.Errorf("Parse(%q): %s", tt.yaml, msg)
			}
		})
	}
}

func TestMergedKeyStillChecked(t *testing.T) {
	_, err := Parse("cfg.yaml", []byte("upstreams:\n  a: &base {endpiont: x}\n  b: {<<: *base}\n"), env())
	if err == nil || !strings.Contains(err.Error(), `unknown key "endpiont"`) {
		t.Errorf("Parse error = %v, want unknown key endpiont", err)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		edit func(string) string
		env  LookupFunc
		want string // "" for valid
	}{
		{"valid", nil, nil, ""},
		{"unknown upstream", func(s string) string { return strings.Replace(s, "{upstream: b2,", "{upstream: b3,", 1) }, nil,
			`cfg.yaml: line 8: buckets.media.upstream: unknown upstream "b3" (configured: b2)`},
		{"grant on unknown bucket", func(s string) string { return strings.Replace(s, "{bucket: media,", "{bucket: photos,", 1) }, nil,
			`line 13: credentials[0].grants[0].bucket: unknown bucket "photos" (configured: media)`},
		{"bad action", func(s string) string { return strings.Replace(s, "list, delete", "list, remove", 1) }, nil,
			`line 13: credentials[0].grants[0].actions[3]: unknown action "remove"`},
		{"no actions", func(s string) string { return strings.Replace(s, "[read, write, list, delete]", "[]", 1) }, nil,
			`credentials[0].grants[0].actions: none`},
		{"empty secret", nil, env("B2_SECRET", "b2-secret-value", "SYNAPSE_SECRET", ""),
			`line 11: credentials[0].secret_access_key: missing`},
		{"short secret", nil, env("B2_SECRET", "b2-secret-value", "SYNAPSE_SECRET", "short"),
			`credentials[0].secret_access_key: shorter than 8 characters`},
		{"upstream secret missing", nil, env("B2_SECRET", "", "SYNAPSE_SECRET", "synapse-secret-value"),
			`line 6: upstreams.b2.secret_access_key: missing`},
		{"duplicate access key", func(s string) string {
			return s + "  - {access_key_id: synapse, secret_access_key: abcdefghij, grants: [{bucket: media, actions: [read]}]}\n"
		}, nil, `credentials[1].access_key_id: "synapse" is already used by credentials[0]`},
		{"bad listen", func(s string) string { return strings.Replace(s, "127.0.0.1:9000", "localhost", 1) }, nil,
			`line 1: listen: "localhost" is not host:port`},
		{"bad port", func(s string) string { return strings.Replace(s, "127.0.0.1:9000", "127.0.0.1:99999", 1) }, nil,
			`listen: "127.0.0.1:99999": port must be a number`},
		{"bad metrics listen", func(s string) string { return s + "metrics_listen: nine\n" }, nil, `metrics_listen: "nine" is not host:port`},
		{"metrics on the endpoint's address", func(s string) string { return s + "metrics_listen: 127.0.0.1:9000\n" }, nil,
			`metrics_listen: must differ from listen`},
		{"both on port 0", func(s string) string {
			return strings.Replace(s, "127.0.0.1:9000", "127.0.0.1:0", 1) + "metrics_listen: 127.0.0.1:0\n"
		}, nil, ""},
		{"bad endpoint", func(s string) string { return strings.Replace(s, "https://s3.example.com", "s3.example.com", 1) }, nil,
			`line 4: upstreams.b2.endpoint: want http(s)://host[:port][/path]`},
		{"endpoint with credentials", func(s string) string { return strings.Replace(s, "https://s3.", "https://u:p@s3.", 1) }, nil,
			`upstreams.b2.endpoint: must not contain credentials`},
		{"bad type", func(s string) string { return strings.Replace(s, "  b2:\n", "  b2:\n    type: gcs\n", 1) }, nil,
			`upstreams.b2.type: "gcs" is not one of s3, embedded`},
		{"embedded takes no endpoint", func(s string) string { return strings.Replace(s, "  b2:\n", "  b2:\n    type: embedded\n", 1) }, nil,
			`upstreams.b2.endpoint: not used by type embedded`},
		{"bad checksum mode", func(s string) string {
			return strings.Replace(s, "  b2:\n", "  b2:\n    request_checksum_calculation: always\n", 1)
		}, nil,
			`upstreams.b2.request_checksum_calculation: "always" is not one of when_required, when_supported`},
		{"bad cache mode", func(s string) string {
			return strings.Replace(s, "bucket: upstream-media}", "bucket: upstream-media, cache: {mode: lru}}", 1)
		}, nil,
			`buckets.media.cache.mode: "lru" is not one of immutable, revalidate, off`},
		{"bad bucket name", func(s string) string { return strings.Replace(s, "  media: {", "  Media: {", 1) }, nil,
			`buckets.Media: bucket names use only`},
		{"bad log level", func(s string) string { return s + "log: {level: verbose}\n" }, nil, `log.level: "verbose" is not one of debug, info, warn, error`},
		{"cert without key", func(s string) string { return s + "tls: {cert_file: c.pem}\n" }, nil, `tls: cert_file and key_file go together`},
		{"cert and acme", func(s string) string {
			return s + "tls: {cert_file: c.pem, key_file: k.pem, acme_domains: [a.example]}\n"
		}, nil,
			`tls.acme_domains: use either acme_domains or cert_file/key_file`},
		{"acme without email", func(s string) string { return s + "tls: {acme_domains: [s3.example.com]}\n" }, nil,
			`tls.acme_email: required with acme_domains`},
		{"cache object above cache", func(s string) string { return s + "cache: {max_size: 1GiB, max_object_size: 2GiB}\n" }, nil,
			`cache.max_object_size: 2GiB exceeds cache.max_size 1GiB`},
		{"header limit too small", func(s string) string { return s + "limits: {max_header_bytes: 100}\n" }, nil,
			`limits.max_header_bytes: must be from 4KiB to 16MiB`},
		{"buckets without upstreams", func(string) string { return "buckets: {media: {}}\n" }, nil, `upstreams: none configured`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := valid
			if tt.edit != nil {
				src = tt.edit(src)
			}
			lookup := tt.env
			if lookup == nil {
				lookup = validEnv
			}
			c, err := Parse("cfg.yaml", []byte(src), lookup)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			err = c.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Validate() = %v, want nil", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("Validate() = %v, want it to contain %q", err, tt.want)
			}
			if err != nil && (strings.Contains(err.Error(), "synapse-secret-value") || strings.Contains(err.Error(), "b2-secret-value")) {
				t.Errorf("Validate() error reveals a secret: %v", err)
			}
		})
	}
}

func TestValidateDefaults(t *testing.T) {
	c, err := Parse("cfg.yaml", []byte(strings.Replace(valid, "{upstream: b2, bucket: upstream-media}", "{}", 1)), validEnv)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	b, u := c.Buckets["media"], c.Upstreams["b2"]
	if b.Upstream != "b2" || b.Bucket != "media" || b.Cache.Mode != CacheImmutable {
		t.Errorf("bucket defaults = %+v, want upstream b2, bucket media, mode immutable", b)
	}
	if u.Type != TypeS3 || u.RequestChecksumCalculation != "when_required" || u.ResponseChecksumValidation != "when_required" {
		t.Errorf("upstream defaults = %+v", u)
	}
	if c.Cache.MissTimeout.D() != 30*time.Second || c.Cache.FillTimeout.D() != 0 {
		t.Errorf("cache timeouts: miss %v, fill %v; want 30s and none", c.Cache.MissTimeout, c.Cache.FillTimeout)
	}
	pc := c.Policy()
	if pc.Buckets["media"].Cache.SSEC {
		t.Errorf("SSE-C objects are cached by default")
	}
	if len(pc.Credentials) != 1 || pc.Credentials[0].SecretAccessKey != "synapse-secret-value" || pc.Credentials[0].Grants[0].Actions.String() != "read,write,list,delete" {
		t.Errorf("Policy() credentials = %+v", pc.Credentials)
	}
}

func TestSSECOptIn(t *testing.T) {
	c, err := Parse("cfg.yaml", []byte(strings.Replace(valid, "{upstream: b2, bucket: upstream-media}", "{upstream: b2, bucket: upstream-media, cache: {sse_c: true}}", 1)), validEnv)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if !c.Policy().Buckets["media"].Cache.SSEC {
		t.Error("cache.sse_c: true did not reach the policy")
	}
}

func TestDemoValidates(t *testing.T) {
	c := Default()
	if !c.Demo() {
		t.Fatal("Default().Demo() = false")
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate() of the defaults = %v", err)
	}
	c.SetDemo("s3edge-abcdefghijkl", "0123456789012345678901234567890123456789")
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate() of the demo = %v", err)
	}
	if got := c.UpstreamBuckets(DemoUpstream); len(got) != 1 || got[0] != DemoBucket {
		t.Errorf("UpstreamBuckets = %v, want [media]", got)
	}
}

func TestOverrides(t *testing.T) {
	c, err := Parse("cfg.yaml", []byte("listen: bad\ndata_dir: /x\n"), env())
	if err != nil {
		t.Fatal(err)
	}
	c.Apply(Overrides{Listen: "127.0.0.1:0", LogLevel: "debug"})
	if c.Listen != "127.0.0.1:0" || c.DataDir != "/x" || c.Log.Level != "debug" {
		t.Errorf("after Apply: listen %q data_dir %q level %q", c.Listen, c.DataDir, c.Log.Level)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate() = %v", err)
	}
}

func TestSecretsRedacted(t *testing.T) {
	c, err := Parse("cfg.yaml", []byte(valid), validEnv)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	dump, err := c.Dump()
	if err != nil {
		t.Fatal(err)
	}
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("config", "upstream", c.Upstreams["b2"], "secret", c.Credentials[0].SecretAccessKey)
	for name, out := range map[string]string{
		"%v": fmt.Sprintf("%v", c), "%+v": fmt.Sprintf("%+v", c), "%#v": fmt.Sprintf("%#v", c),
		"%s": fmt.Sprintf("%s", c.Credentials[0].SecretAccessKey), "Dump": string(dump), "slog": logged.String(),
	} {
		if strings.Contains(out, "secret-value") {
			t.Errorf("%s reveals a secret: %s", name, out)
		}
	}
	if !strings.Contains(string(dump), "secret_access_key: '[redacted]'") {
		t.Errorf("Dump() = %s, want secrets shown as [redacted]", dump)
	}
	// The dump, with its redactions, is itself a valid file.
	if _, err := Parse("dump.yaml", dump, env()); err != nil {
		t.Errorf("Parse(Dump()) = %v", err)
	}
}

func TestExampleFile(t *testing.T) {
	data, err := os.ReadFile("../../../../s3edge.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := Parse("s3edge.example.yaml", data, env("B2_KEY_ID", "k", "B2_APP_KEY", "app-key-value", "SYNAPSE_S3_SECRET", "synapse-secret"))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if c.Cache.MaxSize != 50<<30 || c.Upstreams["b2"].Region != "us-west-002" || c.Buckets["media"].Bucket != "matrix-example-media" {
		t.Errorf("example values not read: %+v", c)
	}
}
