package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("listen: 127.0.0.1:0\nupstreams:\n  b2:\n    endpiont: https://x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(dir, "good.yaml")
	if err := os.WriteFile(good, []byte(`upstreams:
  local: {type: embedded}
buckets:
  photos: {}
credentials:
  - access_key_id: tenant
    secret_access_key: ${S3EDGE_RUN_TEST_SECRET}
    grants: [{bucket: photos, actions: [read]}]
`), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("S3EDGE_RUN_TEST_SECRET", "run-test-secret-value")

	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{"no arguments", nil, 2, "", "Commands:\n  serve"},
		{"help", []string{"help"}, 0, "Commands:", ""},
		{"unknown command", []string{"serv"}, 2, "", `unknown command "serv"`},
		{"version", []string{"version"}, 0, "s3edge ", ""},
		{"--version", []string{"--version"}, 0, "s3edge ", ""},
		{"version takes no argument", []string{"version", "x"}, 2, "", `unexpected argument "x"`},
		{"serve help", []string{"serve", "-h"}, 0, "", "-data-dir directory"},
		{"serve bad flag", []string{"serve", "--lisen", "x"}, 2, "", "flag provided but not defined: -lisen"},
		{"serve missing file", []string{"serve", "--config", filepath.Join(dir, "none.yaml")}, 1, "", "no such file"},
		{"serve bad config", []string{"serve", "--config", bad}, 1, "",
			`bad.yaml: line 4: upstreams.b2.endpiont: unknown key "endpiont" (did you mean "endpoint"?)`},
		{"serve bad listen flag", []string{"serve", "--listen", "nowhere"}, 1, "", `listen: "nowhere" is not host:port`},
		{"config dump", []string{"config", "--config", good, "--listen", "127.0.0.1:1234"}, 0,
			"listen: 127.0.0.1:1234\n", ""},
		{"config demo", []string{"config"}, 0, "runs the embedded demo", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(t.Context(), tt.args, &stdout, &stderr)
			if code != tt.wantCode {
				t.Errorf("run(%q) = %d, want %d; stderr:\n%s", tt.args, code, tt.wantCode, stderr.String())
			}
			if !strings.Contains(stdout.String(), tt.wantStdout) {
				t.Errorf("run(%q) stdout = %q, want it to contain %q", tt.args, stdout.String(), tt.wantStdout)
			}
			if !strings.Contains(stderr.String(), tt.wantStderr) {
				t.Errorf("run(%q) stderr = %q, want it to contain %q", tt.args, stderr.String(), tt.wantStderr)
			}
			if strings.Contains(stdout.String()+stderr.String(), "run-test-secret-value") {
				t.Errorf("run(%q) printed a secret", tt.args)
			}
		})
	}
}
