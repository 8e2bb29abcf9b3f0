package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/s3edge/s3edge/cmd/s3edge/internal/config"
	"github.com/s3edge/s3edge/cmd/s3edge/internal/heapfloor"
	"github.com/s3edge/s3edge/policy"
	"github.com/s3edge/s3edge/proxy"
)

// serve runs the S3 endpoint until ctx is cancelled, then shuts down
// gracefully. The demo lines and the "s3edge listening on URL" line go to
// stdout, the log to stderr.
func serve(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	var cf configFlags
	fs := newFlagSet("serve", "[--config s3edge.yaml] [--listen host:port] [--data-dir dir] [--log-level level]", stderr)
	cf.register(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := cf.load()
	if err != nil {
		return fmt.Errorf("invalid configuration:\n%w", indent(err))
	}
	log := newLogger(cfg.Log, stderr)
	stopProfile, err := startCPUProfile()
	if err != nil {
		return err
	}
	defer stopProfile()
	defer heapfloor.Start(uint64(cfg.Limits.GCHeapFloor)).Stop()
	log.Info("s3edge starting", "version", versionString(), "config", cmp.Or(cfg.Source(), "(none: embedded demo)"),
		"data_dir", cfg.DataDir)

	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("data_dir: %w", err)
	}
	var demo *demoCredentials
	if cfg.Demo() {
		c, created, err := loadOrCreateCredentials(cfg.DataDir)
		if err != nil {
			return fmt.Errorf("demo credentials: %w", err)
		}
		log.Info("demo credentials", "access_key_id", c.AccessKeyID, "created", created,
			"file", filepath.Join(cfg.DataDir, credentialsName))
		cfg.SetDemo(c.AccessKeyID, c.SecretAccessKey)
		if err := cfg.Validate(); err != nil {
			return fmt.Errorf("demo configuration: %w", err)
		}
		demo = &c
	}

	ups, err := openUpstreams(cfg, log)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := ups.Close(); cerr != nil {
			log.Error("closing upstreams", "err", cerr)
			err = errors.Join(err, cerr)
		}
	}()
	pol, err := policy.New(cfg.Policy())
	if err != nil {
		return err
	}
	reg, err := newRegistry()
	if err != nil {
		return err
	}
	c, err := openCache(cfg, log)
	if err != nil {
		return err
	}
	if c != nil {
		// Runs after the HTTP servers have drained (defers run last in,
		// first out), so no request still reads from it.
		defer func() {
			if cerr := c.Close(); cerr != nil {
				log.Error("closing cache", "err", cerr)
				err = errors.Join(err, cerr)
			}
		}()
		if err := reg.Register(newCacheCollector(c)); err != nil {
			return err
		}
	}
	handler, err := proxy.New(proxy.Config{
		Cache:          c,
		NoXCache:       cfg.Cache.XCacheHeader != nil && !*cfg.Cache.XCacheHeader,
		Metrics:        reg,
		Policy:         func() *policy.Policy { return pol },
		Upstreams:      ups.byName,
		SpoolDir:       filepath.Join(cfg.DataDir, "spool"),
		Region:         cfg.Region,
		BaseDomains:    cfg.BaseDomains,
		MaxObjectSize:  int64(cfg.Limits.MaxObjectSize),
		MaxHeaderBytes: int(cfg.Limits.MaxHeaderBytes),
		MemorySpool:    memorySpool(cfg.Limits.MemorySpool),
		StallTimeout:   cfg.Limits.StallTimeout.D(),
		Logger:         log,
	})
	if err != nil {
		return err
	}

	tlsCfg, stopTLS, err := tlsConfig(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer stopTLS()
	srv := &http.Server{
		Handler:           handler,
		ConnContext:       proxy.ConnContext,
		TLSConfig:         tlsCfg,
		ReadHeaderTimeout: cfg.Limits.ReadHeaderTimeout.D(),
		IdleTimeout:       cfg.Limits.IdleTimeout.D(),
		// Above the proxy's own limit, so that the proxy answers 400
		// RequestHeaderSectionTooLarge as S3 does; Go answers 431 beyond.
		MaxHeaderBytes: 2 * int(cfg.Limits.MaxHeaderBytes),
		// No WriteTimeout: the proxy extends a per-write deadline
		// (limits.stall_timeout) so that long media streams may run.
		ErrorLog: slog.NewLogLogger(log.With("component", "http").Handler(), slog.LevelWarn),
	}
	var protos http.Protocols
	protos.SetHTTP1(true) // S3 is HTTP/1.1; no h2 or h2c surprises
	srv.Protocols = &protos

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	if tlsCfg == nil && c != nil && (cfg.Cache.HitPath == nil || *cfg.Cache.HitPath) {
		// Cache hits are served without net/http's per-request work;
		// everything else goes to srv.
		ln = handler.HitListener(ln, proxy.HitOptions{
			ReadHeaderTimeout: srv.ReadHeaderTimeout,
			IdleTimeout:       srv.IdleTimeout,
		})
	} else {
		ln = proxy.Listener(ln)
	}
	scheme := "http"
	if tlsCfg != nil {
		scheme = "https"
	}
	servers := []*http.Server{srv}
	listeners := []net.Listener{ln}
	if cfg.MetricsListen != "" {
		mh := metricsHandler(reg, log, c)
		mln, err := net.Listen("tcp", cfg.MetricsListen)
		if err != nil {
			ln.Close()
			return fmt.Errorf("metrics_listen: %w", err)
		}
		servers = append(servers, &http.Server{
			Handler:           mh,
			ReadHeaderTimeout: cfg.Limits.ReadHeaderTimeout.D(),
			IdleTimeout:       cfg.Limits.IdleTimeout.D(),
			ErrorLog:          srv.ErrorLog,
		})
		listeners = append(listeners, mln)
		log.Info("metrics listening", "url", "http://"+mln.Addr().String()+"/metrics")
	}

	endpoint := endpointURL(scheme, ln.Addr(), cfg.TLS.ACMEDomains)
	if demo != nil {
		if err := printDemo(stdout, endpoint, cfg.Region, cfg.DataDir, *demo); err != nil {
			closeAll(listeners)
			return err
		}
	}
	log.Info("s3edge listening", "addr", ln.Addr().String(), "tls", tlsCfg != nil, "endpoint", endpoint)
	// A stable line for people and test harnesses: the bound address.
	if _, err := fmt.Fprintf(stdout, "s3edge listening on %s://%s\n", scheme, ln.Addr()); err != nil {
		closeAll(listeners)
		return err
	}

	var drain func(context.Context) error
	if c != nil {
		drain = c.Drain
	}
	return serveUntilDone(ctx, cfg, log, servers, listeners, tlsCfg != nil, drain)
}

// serveUntilDone serves until ctx is done or a server fails, then shuts every server
// down: requests in flight, then the cache fills they started, get
// limits.shutdown_timeout to finish, after which connections are cut and
// fills cancelled.
func serveUntilDone(ctx context.Context, cfg *config.Config, log *slog.Logger, servers []*http.Server, listeners []net.Listener, useTLS bool, drain func(context.Context) error) error {
	errc := make(chan error, len(servers))
	var wg sync.WaitGroup
	for i, srv := range servers {
		ln := listeners[i]
		wg.Go(func() {
			var err error
			if i == 0 && useTLS {
				err = srv.ServeTLS(ln, "", "")
			} else {
				err = srv.Serve(ln)
			}
			if !errors.Is(err, http.ErrServerClosed) {
				errc <- err
			}
		})
	}
	var failed error
	select {
	case <-ctx.Done():
		log.Info("shutting down", "timeout", cfg.Limits.ShutdownTimeout.D())
	case failed = <-errc:
		log.Error("server failed; shutting down", "err", failed)
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.Limits.ShutdownTimeout.D())
	defer cancel()
	for i, srv := range servers {
		err := srv.Shutdown(sctx)
		if hl, ok := listeners[i].(*proxy.HitListener); ok {
			err = errors.Join(err, hl.Shutdown(sctx))
		}
		if err != nil {
			log.Warn("graceful shutdown incomplete; closing connections", "err", err)
			failed = errors.Join(failed, srv.Close())
		}
	}
	// Cache fills outlive their clients: let those still running commit
	// within what is left of the shutdown timeout.
	if drain != nil {
		if err := drain(sctx); err != nil {
			log.Warn("cache fills still running at the shutdown timeout; cancelling them", "err", err)
		}
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		failed = errors.Join(failed, err)
	}
	if failed == nil {
		log.Info("s3edge stopped")
	}
	return failed
}

// endpointURL is the URL clients should use: the first ACME domain when
// there is one, else the bound address with a wildcard IP (0.0.0.0, ::)
// replaced by 127.0.0.1.
func endpointURL(scheme string, addr net.Addr, acmeDomains []string) string {
	tcp, ok := addr.(*net.TCPAddr)
	if !ok {
		return scheme + "://" + addr.String()
	}
	port := strconv.Itoa(tcp.Port)
	if len(acmeDomains) > 0 {
		if port == "443" {
			return scheme + "://" + acmeDomains[0]
		}
		return scheme + "://" + net.JoinHostPort(acmeDomains[0], port)
	}
	host := tcp.IP.String()
	if tcp.IP.IsUnspecified() {
		host = "127.0.0.1" // Go's wildcard listeners are dual-stack
	}
	return scheme + "://" + net.JoinHostPort(host, port)
}

func closeAll(lns []net.Listener) {
	for _, ln := range lns {
		ln.Close()
	}
}

// memorySpool maps limits.memory_spool to proxy.Config.MemorySpool, where 0
// is the default and a negative value none.
func memorySpool(n config.Size) int64 {
	if n == 0 {
		return -1
	}
	return int64(n)
}
