package upstream

import (
	"cmp"
	"context"
	"crypto/md5"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go/logging"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// Checksum modes for Config.RequestChecksum and Config.ResponseChecksum.
const (
	// ChecksumWhenRequired computes or validates checksums only where the
	// S3 API demands one (DeleteObjects). It is the default: many
	// S3-compatible providers reject the SDK's default trailing checksums
	// and aws-chunked bodies.
	ChecksumWhenRequired = "when_required"
	// ChecksumWhenSupported is the SDK's own default (CRC32 on every
	// upload, aws-chunked with a trailer over https). Use it only against
	// AWS S3 itself.
	ChecksumWhenSupported = "when_supported"
)

// Config configures an S3 upstream. The zero value of every field is a
// documented default; only the credentials and, for anything but AWS S3,
// Endpoint need to be set.
type Config struct {
	// Endpoint is the provider's base URL, "https://s3.example.com" (a path
	// prefix is allowed). Empty means AWS S3 in Region.
	Endpoint string
	// Region signs the requests. Empty means "us-east-1", which most
	// S3-compatible providers accept.
	Region string
	// AccessKeyID and SecretAccessKey are the upstream credentials. Both
	// empty means anonymous requests. They never appear in errors or logs.
	AccessKeyID, SecretAccessKey string
	// PathStyle addresses buckets as https://host/bucket/key instead of
	// https://bucket.host/key.
	PathStyle bool
	// RequestChecksum and ResponseChecksum are ChecksumWhenRequired (the
	// default, also for "") or ChecksumWhenSupported.
	RequestChecksum, ResponseChecksum string
	// ConnectTimeout bounds the TCP connect and the TLS handshake; 0 means
	// 10s.
	ConnectTimeout time.Duration
	// ResponseHeaderTimeout bounds the wait for response headers once the
	// request has been sent; 0 means 60s (CompleteMultipartUpload and
	// CopyObject of large objects can take a while on some providers).
	ResponseHeaderTimeout time.Duration
	// IdleConnTimeout closes pooled connections idle this long; 0 means 90s.
	IdleConnTimeout time.Duration
	// MaxConns caps the connections to the provider's host, idle or busy;
	// a request beyond it waits for a free connection (bounded by its
	// context). 0 means 128.
	MaxConns int
	// MaxAttempts is the number of attempts per operation, retries included,
	// with exponential backoff and full jitter between them; 0 means 3 and 1
	// disables retries. Bodies are rewound for each attempt.
	MaxAttempts int
	// MaxBackoff caps the delay between two attempts; 0 means 2s.
	MaxBackoff time.Duration
	// HTTPClient, if set, replaces the client New builds; the timeouts and
	// MaxConns above are then ignored. For tests.
	HTTPClient *http.Client
	// Logger receives the SDK's warnings; nil discards them.
	Logger *slog.Logger
}

// String describes the configuration without the secret key.
func (c Config) String() string {
	secret := ""
	if c.SecretAccessKey != "" {
		secret = "[redacted]"
	}
	return fmt.Sprintf("upstream.Config{Endpoint: %q, Region: %q, AccessKeyID: %q, SecretAccessKey: %q, PathStyle: %t}",
		c.Endpoint, c.Region, c.AccessKeyID, secret, c.PathStyle)
}

// GoString is String, so that %#v does not print the secret key either.
func (c Config) GoString() string { return c.String() }

// LogValue keeps the secret key out of structured logs.
func (c Config) LogValue() slog.Value { return slog.StringValue(c.String()) }

// S3 is an Upstream over aws-sdk-go-v2. It is safe for concurrent use.
type S3 struct {
	client *s3.Client
	log    *slog.Logger
}

var _ Upstream = (*S3)(nil)

// New validates cfg and builds the client. It does no I/O.
func New(cfg Config) (*S3, error) {
	opts, err := cfg.options()
	if err != nil {
		return nil, fmt.Errorf("upstream: config: %w", err)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	opts.Logger = logging.LoggerFunc(func(c logging.Classification, format string, v ...any) {
		level := slog.LevelDebug
		if c == logging.Warn {
			level = slog.LevelWarn
		}
		log.Log(context.Background(), level, fmt.Sprintf(format, v...), "component", "aws-sdk")
	})
	return &S3{client: s3.New(opts), log: log}, nil
}

func (c Config) options() (s3.Options, error) {
	reqSum, err := checksumMode(c.RequestChecksum)
	if err != nil {
		return s3.Options{}, fmt.Errorf("request checksum: %w", err)
	}
	respSum, err := checksumMode(c.ResponseChecksum)
	if err != nil {
		return s3.Options{}, fmt.Errorf("response checksum: %w", err)
	}
	for name, d := range map[string]time.Duration{
		"connect timeout": c.ConnectTimeout, "response header timeout": c.ResponseHeaderTimeout,
		"idle connection timeout": c.IdleConnTimeout, "max backoff": c.MaxBackoff,
	} {
		if d < 0 {
			return s3.Options{}, fmt.Errorf("negative %s %v", name, d)
		}
	}
	if c.MaxConns < 0 || c.MaxAttempts < 0 {
		return s3.Options{}, fmt.Errorf("negative max conns %d or max attempts %d", c.MaxConns, c.MaxAttempts)
	}
	if (c.AccessKeyID == "") != (c.SecretAccessKey == "") {
		return s3.Options{}, errors.New("access key ID and secret access key must be set together")
	}

	o := s3.Options{
		AppID:                      "s3edge",
		Region:                     cmp.Or(c.Region, "us-east-1"),
		UsePathStyle:               c.PathStyle,
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
		// The response checksum is validated only where the client asks
		// for it; the skipped-validation notice would be noise.
		DisableLogOutputChecksumValidationSkipped: true,
		DisableMultiRegionAccessPoints:            true,
		DisableS3ExpressSessionAuth:               aws.Bool(true),
		Retryer:                                   newRetryer(c.MaxAttempts, c.MaxBackoff),
		Credentials:                               aws.AnonymousCredentials{},
	}
	if reqSum {
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenSupported
	}
	if respSum {
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenSupported
	}
	if c.Endpoint != "" {
		u, err := url.Parse(c.Endpoint)
		if err != nil {
			return s3.Options{}, errors.New("endpoint is not a URL")
		}
		if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
			return s3.Options{}, fmt.Errorf("endpoint %q: want http(s)://host[:port][/path] without credentials or query", u.Redacted())
		}
		o.BaseEndpoint = aws.String(c.Endpoint)
	}
	if c.AccessKeyID != "" {
		o.Credentials = credentials.NewStaticCredentialsProvider(c.AccessKeyID, c.SecretAccessKey, "")
	}
	if c.HTTPClient != nil {
		o.HTTPClient = c.HTTPClient
	} else {
		o.HTTPClient = &http.Client{Transport: c.transport()}
	}
	return o, nil
}

// checksumMode parses a Config checksum mode: whether it is
// ChecksumWhenSupported.
func checksumMode(s string) (supported bool, err error) {
	switch s {
	case "", ChecksumWhenRequired:
		return false, nil
	case ChecksumWhenSupported:
		return true, nil
	}
	return false, fmt.Errorf("unknown mode %q, want %q or %q", s, ChecksumWhenRequired, ChecksumWhenSupported)
}

// transport is a dedicated pool for the provider: HTTP/1.1 (S3 speaks
// nothing else, and parallel connections beat one multiplexed one for bulk
// transfers), no transparent gzip (bytes and lengths must stay the
// provider's), and bounded connect and header waits. Bodies have no overall
// timeout: a multi-GiB transfer is bounded by its context instead.
func (c Config) transport() *http.Transport {
	connect := cmp.Or(c.ConnectTimeout, 10*time.Second)
	maxConns := cmp.Or(c.MaxConns, 128)
	dialer := &net.Dialer{Timeout: connect, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dialer.DialContext,
		TLSHandshakeTimeout:   connect,
		ResponseHeaderTimeout: cmp.Or(c.ResponseHeaderTimeout, 60*time.Second),
		IdleConnTimeout:       cmp.Or(c.IdleConnTimeout, 90*time.Second),
		// The SDK sends "Expect: 100-continue" on PUTs above 2 MiB, so
		// that a refused upload (403, 412) costs no body; wait this long
		// for the interim answer before sending the body anyway.
		ExpectContinueTimeout: time.Second,
		MaxIdleConns:          maxConns,
		MaxIdleConnsPerHost:   maxConns,
		MaxConnsPerHost:       maxConns,
		DisableCompression:    true,
		ForceAttemptHTTP2:     false,
	}
}

// newRetryer is the SDK's standard retryer (retries throttling, 5xx and
// connection errors; exponential backoff with full jitter; a client-wide
// retry quota that stops retry storms while the provider is down).
func newRetryer(attempts int, maxBackoff time.Duration) aws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = cmp.Or(attempts, 3)
		o.MaxBackoff = cmp.Or(maxBackoff, 2*time.Second)
	})
}

// withContentMD5 adds Content-MD5 to a request whose body the SDK has
// serialized in memory (DeleteObjects). The API requires an integrity
// header there; the SDK sends x-amz-checksum-crc32, which AWS accepts but
// older MinIO, Ceph and other providers refuse without Content-MD5.
func withContentMD5(o *s3.Options) {
	o.APIOptions = append(o.APIOptions, func(st *middleware.Stack) error {
		return st.Build.Add(middleware.BuildMiddlewareFunc("s3edge:ContentMD5",
			func(ctx context.Context, in middleware.BuildInput, next middleware.BuildHandler) (middleware.BuildOutput, middleware.Metadata, error) {
				req, ok := in.Request.(*smithyhttp.Request)
				if ok && req.Header.Get("Content-Md5") == "" && req.IsStreamSeekable() {
					if body := req.GetStream(); body != nil {
						h := md5.New()
						if _, err := io.Copy(h, body); err != nil {
							return middleware.BuildOutput{}, middleware.Metadata{}, fmt.Errorf("content-md5: %w", err)
						}
						if err := req.RewindStream(); err != nil {
							return middleware.BuildOutput{}, middleware.Metadata{}, fmt.Errorf("content-md5: %w", err)
						}
						req.Header.Set("Content-Md5", base64.StdEncoding.EncodeToString(h.Sum(nil)))
					}
				}
				return next.HandleBuild(ctx, in)
			}), middleware.After)
	})
}
