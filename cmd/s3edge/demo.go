package main

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/s3edge/s3edge/cmd/s3edge/internal/config"
)

// demoCredentials is the access key of the embedded demo, kept in
// <data_dir>/credentials.json so that it survives restarts.
type demoCredentials struct {
	AccessKeyID     string
	SecretAccessKey config.Secret
}

// credentialsFile is the on-disk form; the secret is a plain string here
// (config.Secret marshals as "[redacted]").
type credentialsFile struct {
	AccessKeyID     string `json:"access_key_id"`
	SecretAccessKey string `json:"secret_access_key"`
}

const credentialsName = "credentials.json"

// loadOrCreateCredentials reads dir/credentials.json, or generates a key and
// writes it there (mode 0600, atomically) when there is none. created tells
// which. A file that exists but cannot be used is an error, not a reason to
// replace it: clients hold those keys.
func loadOrCreateCredentials(dir string) (c demoCredentials, created bool, err error) {
	path := filepath.Join(dir, credentialsName)
	c, err = readCredentials(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return c, false, err
	}
	c = demoCredentials{
		AccessKeyID:     "s3edge-" + strings.ToLower(rand.Text()[:12]),
		SecretAccessKey: config.Secret(randomSecret(40)),
	}
	switch err := writeCredentials(path, c); {
	case errors.Is(err, fs.ErrExist):
		// Another s3edge starting on this directory won the race: use its key.
		c, err = readCredentials(path)
		return c, false, err
	case err != nil:
		return c, false, err
	}
	return c, true, nil
}

func readCredentials(path string) (demoCredentials, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return demoCredentials{}, err
	}
	var f credentialsFile
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return demoCredentials{}, fmt.Errorf("%s: %v (fix it, or remove it to generate a new key)", path, err)
	}
	if f.AccessKeyID == "" || len(f.SecretAccessKey) < 8 {
		return demoCredentials{}, fmt.Errorf("%s: access_key_id or secret_access_key missing or too short (remove the file to generate a new key)", path)
	}
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
		if err := os.Chmod(path, 0o600); err != nil {
			return demoCredentials{}, fmt.Errorf("%s is readable by others and cannot be made private: %w", path, err)
		}
	}
	return demoCredentials{AccessKeyID: f.AccessKeyID, SecretAccessKey: config.Secret(f.SecretAccessKey)}, nil
}

// writeCredentials writes c to path atomically and exclusively: a temporary
// file in the same directory (mode 0600), fsynced, then hard-linked to
// path, which fails with fs.ErrExist if path appeared meanwhile; then the
// directory is fsynced so that the new name survives a crash.
func writeCredentials(path string, c demoCredentials) (err error) {
	data, err := json.MarshalIndent(credentialsFile{c.AccessKeyID, string(c.SecretAccessKey)}, "", "  ")
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, ".credentials-*.tmp") // mode 0600
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fs.ErrExist
		}
		return err
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// randomSecret returns n characters drawn uniformly from [A-Za-z0-9] with
// crypto/rand: safe to paste into a shell, YAML or an URL.
func randomSecret(n int) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	out := make([]byte, 0, n)
	buf := make([]byte, 2*n)
	for len(out) < n {
		rand.Read(buf) // never returns an error; crashes the program on failure
		for _, b := range buf {
			// 248 is the largest multiple of 62 below 256: no modulo bias.
			if b < 248 && len(out) < n {
				out = append(out, alphabet[b%62])
			}
		}
	}
	return string(out)
}

// printDemo writes the ready-to-paste lines of the demo to w: shell exports,
// an aws CLI command and the Synapse media_storage_providers snippet. They
// carry the demo secret on purpose; the log never does. Lines that are not
// meant to be pasted start with "#".
func printDemo(w io.Writer, endpoint, region, dataDir string, c demoCredentials) error {
	id, secret := c.AccessKeyID, string(c.SecretAccessKey)
	_, err := fmt.Fprintf(w, `# s3edge demo: an embedded S3 store under %s stands in for a provider (not for production).
# Its bucket %q and this access key persist in %s. Paste into a shell:
export AWS_ACCESS_KEY_ID=%s AWS_SECRET_ACCESS_KEY=%s AWS_DEFAULT_REGION=%s
aws --endpoint-url %s s3 ls s3://%s
# Synapse homeserver.yaml, with synapse-s3-storage-provider installed:
media_storage_providers:
  - module: s3_storage_provider.S3StorageProviderBackend
    store_local: true
    store_remote: true
    store_synchronous: true
    config:
      bucket: %s
      endpoint_url: %s
      access_key_id: %s
      secret_access_key: %s
      region_name: %s
`, filepath.Join(dataDir, "embedded", config.DemoUpstream), config.DemoBucket, dataDir,
		id, secret, region, endpoint, config.DemoBucket,
		config.DemoBucket, endpoint, id, secret, region)
	return err
}
