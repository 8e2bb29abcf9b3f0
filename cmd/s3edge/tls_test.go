package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/s3edge/s3edge/cmd/s3edge/internal/config"
)

// selfSignedCert returns a PEM certificate for 127.0.0.1 and localhost,
// valid until notAfter, and its PEM key.
func selfSignedCert(t *testing.T, notAfter time.Time) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "s3edge test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

func TestCertReloader(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	write := func(cert, key []byte, mtime time.Time) {
		t.Helper()
		for name, data := range map[string][]byte{certFile: cert, keyFile: key} {
			if err := os.WriteFile(name, data, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chtimes(name, mtime, mtime); err != nil {
				t.Fatal(err)
			}
		}
	}
	c1, k1 := selfSignedCert(t, time.Now().Add(time.Hour))
	write(c1, k1, time.Now().Add(-time.Hour))
	var logs bytes.Buffer
	r, err := newCertReloader(certFile, keyFile, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	first, _ := r.get(nil)

	c2, k2 := selfSignedCert(t, time.Now().Add(2*time.Hour))
	write(c2, k2, time.Now())
	if got, _ := r.get(nil); got != first {
		t.Error("reloaded before the check interval passed")
	}
	r.checked = time.Time{} // as if the interval had passed
	second, _ := r.get(nil)
	if second == first || !bytes.Equal(second.Certificate[0], mustDER(t, c2)) {
		t.Error("the renewed certificate was not loaded")
	}

	write([]byte("garbage"), k2, time.Now().Add(time.Hour))
	r.checked = time.Time{}
	if got, _ := r.get(nil); got != second {
		t.Error("a bad certificate replaced the good one")
	}
	if !strings.Contains(logs.String(), "keeping the old one") {
		t.Errorf("no warning logged for the bad certificate: %s", logs.String())
	}
}

func TestCertReloaderErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := newCertReloader(filepath.Join(dir, "none.pem"), filepath.Join(dir, "none.key"), slog.Default()); err == nil || !strings.Contains(err.Error(), "tls.cert_file") {
		t.Errorf("missing files: %v, want an error naming tls.cert_file", err)
	}
	bad := filepath.Join(dir, "bad.pem")
	os.WriteFile(bad, []byte("x"), 0o600)
	if _, err := newCertReloader(bad, bad, slog.Default()); err == nil || !strings.Contains(err.Error(), "tls.cert_file, tls.key_file") {
		t.Errorf("bad files: %v, want an error naming the keys", err)
	}
}

func mustDER(t *testing.T, certPEM []byte) []byte {
	t.Helper()
	b, _ := pem.Decode(certPEM)
	if b == nil {
		t.Fatal("bad PEM")
	}
	return b.Bytes
}

func TestSlogCore(t *testing.T) {
	var buf bytes.Buffer
	zl := zap.New(slogCore{h: slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo})})
	zl.Named("acme").With(zap.String("domain", "s3.example.com")).Info("obtaining certificate", zap.Int("attempt", 2))
	zl.Debug("hidden")
	got := buf.String()
	for _, want := range []string{`level=INFO`, `msg="obtaining certificate"`, `domain=s3.example.com`, `logger=acme`, `attempt=2`} {
		if !strings.Contains(got, want) {
			t.Errorf("log %q lacks %q", got, want)
		}
	}
	if strings.Contains(got, "hidden") {
		t.Errorf("debug entry logged at info level: %q", got)
	}
}

// TestACMEUnreachableCA checks the certmagic wiring without a network: the
// account and lock live under <data_dir>/acme, nothing prompts on stdin, and
// a CA that cannot be reached fails the start with an error naming the key.
func TestACMEUnreachableCA(t *testing.T) {
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.TLS = config.TLS{ACMEDomains: []string{"s3.example.com"}, ACMEEmail: "ops@example.com", ACMECA: "https://127.0.0.1:1/directory"}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	_, _, err := tlsConfig(t.Context(), cfg, slog.New(slog.NewTextHandler(&logs, nil)))
	if err == nil || !strings.HasPrefix(err.Error(), "tls.acme_domains: ") {
		t.Errorf("tlsConfig with an unreachable CA = %v, want an error naming tls.acme_domains", err)
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, "acme")); err != nil {
		t.Errorf("no ACME storage under data_dir: %v", err)
	}
	if !strings.Contains(logs.String(), "component=acme") {
		t.Errorf("certmagic's log did not reach slog: %s", logs.String())
	}
}
