package policy

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func testConfig() Config {
	return Config{
		Buckets: map[string]Bucket{
			"media":  {Upstream: "b2", Bucket: "shared", Prefix: "hs1/", PublicReadPrefixes: []string{"public/"}},
			"media2": {Upstream: "b2", Bucket: "shared", Prefix: "hs2/"},
		},
		Credentials: []Credential{
			{AccessKeyID: "synapse", SecretAccessKey: "secret-secret", Grants: []Grant{{Bucket: "media", Actions: Read | Write | List | Delete}}},
			{AccessKeyID: "thumbs", SecretAccessKey: "secret-thumbs", Grants: []Grant{{Bucket: "media", Prefix: "local_thumbnails/", Actions: Read | List}}},
		},
	}
}

func TestNewValidates(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Config)
		want   string
	}{
		{"bad bucket name", func(c *Config) { c.Buckets["Bad_Name"] = Bucket{Upstream: "b2"} }, "Bad_Name"},
		{"no upstream", func(c *Config) { c.Buckets["x-y"] = Bucket{} }, "no upstream"},
		{"empty key", func(c *Config) { c.Credentials[0].AccessKeyID = "" }, "empty access_key_id"},
		{"short secret", func(c *Config) { c.Credentials[0].SecretAccessKey = "x" }, "shorter than 8"},
		{"duplicate", func(c *Config) { c.Credentials[1].AccessKeyID = "synapse" }, "defined twice"},
		{"unknown bucket grant", func(c *Config) { c.Credentials[0].Grants[0].Bucket = "nope" }, "unknown bucket"},
		{"no actions", func(c *Config) { c.Credentials[0].Grants[0].Actions = 0 }, "no action"},
		{"bad key chars", func(c *Config) { c.Credentials[0].AccessKeyID = "a/b" }, "may not contain"},
		{"prefix without slash", func(c *Config) { c.Buckets["media"] = Bucket{Upstream: "b2", Bucket: "shared", Prefix: "hs1"} }, "must end with '/'"},
		{"overlapping prefixes", func(c *Config) { c.Buckets["media3"] = Bucket{Upstream: "b2", Bucket: "shared", Prefix: "hs1/sub/"} }, "overlap"},
		{"empty prefix overlaps", func(c *Config) { c.Buckets["all"] = Bucket{Upstream: "b2", Bucket: "shared"} }, "overlap"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			tt.mutate(&cfg)
			_, err := New(cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New() error = %v, want one containing %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "secret-") {
				t.Errorf("error %q leaks a secret", err)
			}
		})
	}
}

func TestAuthorize(t *testing.T) {
	p, err := New(testConfig())
	if err != nil {
		t.Fatal(err)
	}
	syn, _ := p.Principal("synapse")
	th, _ := p.Principal("thumbs")
	anon, _ := p.Principal("")
	tests := []struct {
		pr     *Principal
		bucket string
		key    string
		a      Action
		ok     bool
	}{
		{syn, "media", "local_content/ab", Write, true},
		{syn, "media", "x", Read | Delete, true},
		{syn, "media2", "x", Read, false},
		{th, "media", "local_thumbnails/a/b", Read, true},
		{th, "media", "local_thumbnails/a/b", Write, false},
		{th, "media", "local_content/a", Read, false},
		{anon, "media", "public/x", Read, true},
		{anon, "media", "public/x", List, false},
		{anon, "media", "private/x", Read, false},
		{anon, "media2", "public/x", Read, false},
	}
	for _, tt := range tests {
		err := p.Authorize(tt.pr, tt.bucket, tt.key, tt.a)
		if (err == nil) != tt.ok {
			t.Errorf("Authorize(%s, %s, %q, %s) = %v, want ok=%v", tt.pr, tt.bucket, tt.key, tt.a, err, tt.ok)
		}
		if err != nil && !errors.Is(err, ErrAccessDenied) {
			t.Errorf("error %v is not ErrAccessDenied", err)
		}
	}
	if !p.VisiblePrefix(th, "media", "local_") || !p.VisiblePrefix(th, "media", "local_thumbnails/x/") {
		t.Error("thumbs should see prefixes leading to and inside its grant")
	}
	if p.VisiblePrefix(th, "media", "local_content/") {
		t.Error("thumbs should not see local_content/")
	}
	if got := p.VisibleBuckets(th); !slices.Equal(got, []string{"media"}) {
		t.Errorf("VisibleBuckets(thumbs) = %v", got)
	}
}

func TestSecretsAndPrincipals(t *testing.T) {
	p, err := New(testConfig())
	if err != nil {
		t.Fatal(err)
	}
	if s, err := p.Secret("synapse"); err != nil || s != "secret-secret" {
		t.Errorf("Secret(synapse) = %q, %v", s, err)
	}
	if _, err := p.Secret("nobody"); !errors.Is(err, ErrUnknownAccessKey) {
		t.Errorf("Secret(nobody) error = %v, want ErrUnknownAccessKey", err)
	}
	if _, err := p.Principal("nobody"); !errors.Is(err, ErrUnknownAccessKey) {
		t.Errorf("Principal(nobody) error = %v", err)
	}
	pr, _ := p.Principal("synapse")
	if strings.Contains(pr.String(), "secret") {
		t.Errorf("Principal.String() = %q leaks the secret", pr)
	}
	if _, err := p.Bucket("nope"); !errors.Is(err, ErrNoSuchBucket) {
		t.Errorf("Bucket(nope) error = %v", err)
	}
}

func TestParseAction(t *testing.T) {
	for _, s := range []string{"read", "write", "list", "delete"} {
		a, err := ParseAction(s)
		if err != nil || a.String() != s {
			t.Errorf("ParseAction(%q) = %v, %v", s, a, err)
		}
	}
	if _, err := ParseAction("admin"); err == nil {
		t.Error("ParseAction(admin) succeeded")
	}
}

func TestListScope(t *testing.T) {
	cfg := testConfig()
	cfg.Credentials = append(cfg.Credentials, Credential{AccessKeyID: "two", SecretAccessKey: "secret-two-x", Grants: []Grant{
		{Bucket: "media", Prefix: "a/x/", Actions: List}, {Bucket: "media", Prefix: "b/", Actions: List},
	}})
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	syn, _ := p.Principal("synapse")
	th, _ := p.Principal("thumbs")
	two, _ := p.Principal("two")
	tests := []struct {
		pr            *Principal
		prefix, delim string
		want          string
		ok            bool
	}{
		{syn, "", "/", "", true},
		{syn, "x/", "", "x/", true},
		{th, "", "", "local_thumbnails/", true},
		{th, "local_", "", "local_thumbnails/", true},
		{th, "", "/", "", true}, // a delimiter inside the grant keeps the caller's prefix
		{th, "local_thumbnails/a/", "/", "local_thumbnails/a/", true},
		{th, "local_content/", "", "", false},
		{two, "", "", "", true},
		{two, "a/", "", "a/x/", true},
		{two, "c/", "", "", false},
	}
	for _, tt := range tests {
		got, ok := p.ListScope(tt.pr, "media", tt.prefix, tt.delim)
		if got != tt.want || ok != tt.ok {
			t.Errorf("ListScope(%s, %q, %q) = %q, %v; want %q, %v", tt.pr, tt.prefix, tt.delim, got, ok, tt.want, tt.ok)
		}
	}
}
