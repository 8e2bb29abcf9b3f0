package upstream

import (
	"bytes"
	"fmt"
	"log/slog"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

func TestNewValidates(t *testing.T) {
	ok := Config{Endpoint: "https://s3.example.com", AccessKeyID: "AKID", SecretAccessKey: "SECRET"}
	tests := []struct {
		name    string
		mutate  func(*Config)
		wantErr bool
	}{
		{"minimal", func(c *Config) {}, false},
		{"aws, no endpoint", func(c *Config) { c.Endpoint = ""; c.Region = "eu-west-1" }, false},
		{"anonymous", func(c *Config) { c.AccessKeyID, c.SecretAccessKey = "", "" }, false},
		{"endpoint with path", func(c *Config) { c.Endpoint = "http://127.0.0.1:9000/s3" }, false},
		{"when_supported", func(c *Config) { c.RequestChecksum, c.ResponseChecksum = "when_supported", "when_supported" }, false},
		{"not a URL", func(c *Config) { c.Endpoint = "://x" }, true},
		{"no scheme", func(c *Config) { c.Endpoint = "s3.example.com" }, true},
		{"ftp", func(c *Config) { c.Endpoint = "ftp://s3.example.com" }, true},
		{"credentials in endpoint", func(c *Config) { c.Endpoint = "https://user:pass@s3.example.com" }, true},
		{"query in endpoint", func(c *Config) { c.Endpoint = "https://s3.example.com/?x=1" }, true},
		{"key without secret", func(c *Config) { c.SecretAccessKey = "" }, true},
		{"unknown checksum mode", func(c *Config) { c.RequestChecksum = "always" }, true},
		{"negative timeout", func(c *Config) { c.ConnectTimeout = -time.Second }, true},
		{"negative attempts", func(c *Config) { c.MaxAttempts = -1 }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := ok
			tt.mutate(&cfg)
			_, err := New(cfg)
			if (err != nil) != tt.wantErr {
				t.Errorf("New(%v) = %v, want error %t", cfg, err, tt.wantErr)
			}
			if err != nil && (strings.Contains(err.Error(), "pass") || strings.Contains(err.Error(), "SECRET")) {
				t.Errorf("error %q leaks a secret", err)
			}
		})
	}
}

func TestOptionsDefaults(t *testing.T) {
	o, err := Config{Endpoint: "http://127.0.0.1:1", PathStyle: true}.options()
	if err != nil {
		t.Fatal(err)
	}
	if o.Region != "us-east-1" || !o.UsePathStyle || aws.ToString(o.BaseEndpoint) != "http://127.0.0.1:1" ||
		o.RequestChecksumCalculation != aws.RequestChecksumCalculationWhenRequired ||
		o.ResponseChecksumValidation != aws.ResponseChecksumValidationWhenRequired ||
		o.Retryer.MaxAttempts() != 3 {
		t.Errorf("options = region %q, path style %t, endpoint %q, checksums %v/%v, attempts %d",
			o.Region, o.UsePathStyle, aws.ToString(o.BaseEndpoint), o.RequestChecksumCalculation, o.ResponseChecksumValidation, o.Retryer.MaxAttempts())
	}
	tr := Config{}.transport()
	if tr.MaxConnsPerHost != 128 || tr.MaxIdleConnsPerHost != 128 || tr.ResponseHeaderTimeout != 60*time.Second ||
		tr.IdleConnTimeout != 90*time.Second || !tr.DisableCompression {
		t.Errorf("transport = %+v", tr)
	}
}

func TestConfigHidesSecret(t *testing.T) {
	cfg := Config{Endpoint: "https://s3.example.com", AccessKeyID: "AKID", SecretAccessKey: "very-secret"}
	var logged bytes.Buffer
	slog.New(slog.NewTextHandler(&logged, nil)).Info("config", "upstream", cfg)
	for _, s := range []string{fmt.Sprint(cfg), fmt.Sprintf("%+v", cfg), fmt.Sprintf("%#v", cfg), logged.String()} {
		if strings.Contains(s, "very-secret") || !strings.Contains(s, "AKID") {
			t.Errorf("formatted config %q shows the secret or hides the key ID", s)
		}
	}
}

func TestParseContentRange(t *testing.T) {
	tests := []struct {
		in      string
		want    ContentRange
		wantErr bool
	}{
		{"bytes 0-99/1000", ContentRange{0, 99, 1000}, false},
		{"bytes 999-999/1000", ContentRange{999, 999, 1000}, false},
		{"bytes 5-9/*", ContentRange{5, 9, -1}, false},
		{"bytes 0-99/50", ContentRange{}, true},
		{"bytes 9-5/10", ContentRange{}, true},
		{"bytes */1000", ContentRange{}, true},
		{"items 0-1/2", ContentRange{}, true},
		{"bytes 0-1", ContentRange{}, true},
		{"bytes -1-5/10", ContentRange{}, true},
	}
	for _, tt := range tests {
		got, err := parseContentRange(tt.in)
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("parseContentRange(%q) = %+v, %v; want %+v, error %t", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestCopySource(t *testing.T) {
	tests := []struct{ bucket, key, version, want string }{
		{"b", "plain/key.txt", "", "b/plain/key.txt"},
		{"b", "a+b c", "", "b/a%2Bb%20c"},
		{"b", "ü?#%&=", "", "b/%C3%BC%3F%23%25%26%3D"},
		{"b", "k", "v1", "b/k?versionId=v1"},
	}
	for _, tt := range tests {
		if got := copySource(tt.bucket, tt.key, tt.version); got != tt.want {
			t.Errorf("copySource(%q, %q, %q) = %q, want %q", tt.bucket, tt.key, tt.version, got, tt.want)
		}
	}
}

func TestQuoteETag(t *testing.T) {
	for in, want := range map[string]string{"": "", `"abc"`: `"abc"`, "abc": `"abc"`, `W/"abc"`: `W/"abc"`} {
		if got := quoteETag(in); got != want {
			t.Errorf("quoteETag(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestWriteHeaders(t *testing.T) {
	s := &S3{log: slog.New(slog.DiscardHandler)}
	f := s.writeHeaders("put", "b", "k", map[string]string{
		"cache-control": "no-cache", "Content-Disposition": "attachment", "Content-Encoding": "gzip",
		"Content-Language": "en", "Expires": "Wed, 21 Oct 2037 07:28:00 GMT", "Expires-Not": "x",
		"X-Amz-Meta-Foo-Bar": "1", "x-amz-meta-baz": "2", "X-Amz-Tagging": "a=b",
		"X-Amz-Server-Side-Encryption": "aws:kms", "X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id": "kid",
		"X-Amz-Website-Redirect-Location": "/x", "X-Amz-Acl": "private",
	})
	if aws.ToString(f.cacheControl) != "no-cache" || aws.ToString(f.contentDisposition) != "attachment" ||
		aws.ToString(f.contentEncoding) != "gzip" || aws.ToString(f.contentLanguage) != "en" ||
		f.expires == nil || f.expires.Year() != 2037 || aws.ToString(f.tagging) != "a=b" ||
		f.sse != "aws:kms" || aws.ToString(f.sseKMSKeyID) != "kid" || aws.ToString(f.websiteRedirect) != "/x" || f.acl != "private" {
		t.Errorf("writeHeaders = %+v", f)
	}
	if want := map[string]string{"foo-bar": "1", "baz": "2"}; !maps.Equal(f.metadata, want) {
		t.Errorf("metadata = %v, want %v", f.metadata, want)
	}
	if f := s.writeHeaders("put", "b", "k", map[string]string{"Expires": "soon"}); f.expires != nil {
		t.Errorf("Expires %q kept, want dropped", "soon")
	}
}
