package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/s3edge/s3edge/cmd/s3edge/internal/config"
)

func TestCredentialsCreatedAndReused(t *testing.T) {
	dir := t.TempDir()
	c1, created, err := loadOrCreateCredentials(dir)
	if err != nil || !created {
		t.Fatalf("first loadOrCreateCredentials = %v, created %v, want created", err, created)
	}
	if !regexp.MustCompile(`^s3edge-[a-z2-7]{12}$`).MatchString(c1.AccessKeyID) {
		t.Errorf("access key id %q, want s3edge- and 12 lower-case base32 characters", c1.AccessKeyID)
	}
	if !regexp.MustCompile(`^[A-Za-z0-9]{40}$`).MatchString(string(c1.SecretAccessKey)) {
		t.Errorf("secret has length %d or characters outside [A-Za-z0-9], want 40 alphanumerics", len(c1.SecretAccessKey))
	}
	path := filepath.Join(dir, credentialsName)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o600 {
		t.Errorf("%s mode = %v, want 0600", credentialsName, got)
	}
	var onDisk credentialsFile
	data, _ := os.ReadFile(path)
	if err := json.Unmarshal(data, &onDisk); err != nil || onDisk.AccessKeyID != c1.AccessKeyID || onDisk.SecretAccessKey != string(c1.SecretAccessKey) {
		t.Errorf("file holds %q (%v), want the generated key", onDisk.AccessKeyID, err)
	}
	if leftovers, _ := filepath.Glob(filepath.Join(dir, ".credentials-*")); len(leftovers) > 0 {
		t.Errorf("temporary files left behind: %v", leftovers)
	}

	c2, created, err := loadOrCreateCredentials(dir)
	if err != nil || created || c2 != c1 {
		t.Errorf("second loadOrCreateCredentials = %q, created %v, %v; want the first key again", c2.AccessKeyID, created, err)
	}

	// Loose permissions are tightened when the file is read again.
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := loadOrCreateCredentials(dir); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode after reread = %v, want 0600", fi.Mode().Perm())
	}
}

func TestCredentialsConcurrentFirstStart(t *testing.T) {
	dir := t.TempDir()
	const n = 8
	got := make([]demoCredentials, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			c, _, err := loadOrCreateCredentials(dir)
			if err != nil {
				t.Errorf("loadOrCreateCredentials: %v", err)
			}
			got[i] = c
		})
	}
	wg.Wait()
	for i := 1; i < n; i++ {
		if got[i] != got[0] {
			t.Fatalf("concurrent first starts got different keys %q and %q", got[0].AccessKeyID, got[i].AccessKeyID)
		}
	}
}

func TestCredentialsBadFile(t *testing.T) {
	tests := []struct {
		name, content, want string
	}{
		{"not json", "{", "remove it to generate a new key"},
		{"unknown field", `{"access_key_id": "a", "secret_access_key": "abcdefghij", "extra": 1}`, "unknown field"},
		{"short secret", `{"access_key_id": "a", "secret_access_key": "abc"}`, "too short"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, credentialsName)
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			_, _, err := loadOrCreateCredentials(dir)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("loadOrCreateCredentials = %v, want an error containing %q", err, tt.want)
			}
			if data, _ := os.ReadFile(path); string(data) != tt.content {
				t.Errorf("the bad file was replaced: %q", data)
			}
		})
	}
}

func TestWriteCredentialsExclusive(t *testing.T) {
	path := filepath.Join(t.TempDir(), credentialsName)
	c := demoCredentials{AccessKeyID: "a", SecretAccessKey: "0123456789"}
	if err := writeCredentials(path, c); err != nil {
		t.Fatal(err)
	}
	if err := writeCredentials(path, c); !errors.Is(err, fs.ErrExist) {
		t.Errorf("second writeCredentials = %v, want fs.ErrExist", err)
	}
}

func TestRandomSecret(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		s := randomSecret(40)
		if len(s) != 40 || strings.Trim(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789") != "" {
			t.Fatalf("randomSecret(40) = %q", s)
		}
		if seen[s] {
			t.Fatalf("randomSecret repeated %q", s)
		}
		seen[s] = true
	}
}

func TestPrintDemo(t *testing.T) {
	var buf bytes.Buffer
	c := demoCredentials{AccessKeyID: "s3edge-abcdefghijkl", SecretAccessKey: config.Secret("S3cr3t")}
	if err := printDemo(&buf, "http://127.0.0.1:9000", "us-east-1", "s3edge-data", c); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{
		"\nexport AWS_ACCESS_KEY_ID=s3edge-abcdefghijkl AWS_SECRET_ACCESS_KEY=S3cr3t AWS_DEFAULT_REGION=us-east-1\n",
		"\naws --endpoint-url http://127.0.0.1:9000 s3 ls s3://media\n",
		"\nmedia_storage_providers:\n  - module: s3_storage_provider.S3StorageProviderBackend\n    store_local: true\n    store_remote: true\n    store_synchronous: true\n    config:\n      bucket: media\n      endpoint_url: http://127.0.0.1:9000\n      access_key_id: s3edge-abcdefghijkl\n      secret_access_key: S3cr3t\n      region_name: us-east-1\n",
		"not for production",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("printDemo output lacks %q:\n%s", want, out)
		}
	}
	// Every line is either a comment or meant to be pasted.
	for line := range strings.Lines(out) {
		if strings.HasPrefix(line, "# ") || strings.HasPrefix(line, "export ") || strings.HasPrefix(line, "aws ") ||
			strings.HasPrefix(line, "media_storage_providers:") || strings.HasPrefix(line, "  ") {
			continue
		}
		t.Errorf("unexpected line %q", line)
	}
}

func TestEndpointURL(t *testing.T) {
	tests := []struct {
		scheme string
		addr   string
		acme   []string
		want   string
	}{
		{"http", "127.0.0.1:9000", nil, "http://127.0.0.1:9000"},
		{"http", "0.0.0.0:9000", nil, "http://127.0.0.1:9000"},
		{"http", "[::]:9000", nil, "http://127.0.0.1:9000"},
		{"https", "[::1]:8443", nil, "https://[::1]:8443"},
		{"https", "0.0.0.0:443", []string{"s3.example.com"}, "https://s3.example.com"},
		{"https", "0.0.0.0:8443", []string{"s3.example.com"}, "https://s3.example.com:8443"},
	}
	for _, tt := range tests {
		addr, err := net.ResolveTCPAddr("tcp", tt.addr)
		if err != nil {
			t.Fatal(err)
		}
		if got := endpointURL(tt.scheme, addr, tt.acme); got != tt.want {
			t.Errorf("endpointURL(%q, %s, %v) = %q, want %q", tt.scheme, tt.addr, tt.acme, got, tt.want)
		}
	}
}
