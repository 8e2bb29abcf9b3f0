package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/s3edge/s3edge/cmd/s3edge/internal/config"
)

// configFlags are the flags that choose and override the configuration,
// shared by the subcommands that read it.
type configFlags struct {
	path, listen, dataDir, logLevel string
}

func (f *configFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.path, "config", "", "YAML configuration `file` (default: none, the embedded demo)")
	fs.StringVar(&f.listen, "listen", "", "listen `address` host:port, overriding the file's listen (default "+config.DefaultListen+")")
	fs.StringVar(&f.dataDir, "data-dir", "", "data `directory`, overriding the file's data_dir (default "+config.DefaultDataDir+")")
	fs.StringVar(&f.logLevel, "log-level", "", "debug, info, warn or error, overriding the file's log.level (default info)")
}

// load reads the configuration file (or the defaults), applies the flags
// and validates the result. A demo configuration still lacks its upstream,
// bucket and credential: serve adds them.
func (f *configFlags) load() (*config.Config, error) {
	cfg := config.Default()
	if f.path != "" {
		var err error
		if cfg, err = config.Load(f.path); err != nil {
			return nil, err
		}
	}
	cfg.Apply(config.Overrides{Listen: f.listen, DataDir: f.dataDir, LogLevel: f.logLevel})
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// configCmd checks a configuration and prints it, defaults applied and
// secrets redacted.
func configCmd(_ context.Context, args []string, stdout, stderr io.Writer) error {
	var cf configFlags
	fs := newFlagSet("config", "[--config s3edge.yaml] [--listen host:port] [--data-dir dir]", stderr)
	cf.register(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := cf.load()
	if err != nil {
		return fmt.Errorf("invalid configuration:\n%w", indent(err))
	}
	dump, err := cfg.Dump()
	if err != nil {
		return err
	}
	if cfg.Demo() {
		fmt.Fprintln(stdout, "# No upstream, bucket or credential is configured: 's3edge serve' runs the embedded demo.")
	}
	_, err = stdout.Write(dump)
	return err
}

// indent puts each line of a (possibly joined) error on its own indented
// line.
func indent(err error) error {
	return fmt.Errorf("  %s", strings.ReplaceAll(err.Error(), "\n", "\n  "))
}

// newLogger returns the slog logger the configuration asks for, writing to w.
func newLogger(l config.Log, w io.Writer) *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(l.Level)); err != nil {
		level = slog.LevelInfo // Validate has checked it
	}
	opts := &slog.HandlerOptions{Level: level}
	if l.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
