package config

import (
	"strings"
	"testing"
)

func TestParseSize(t *testing.T) {
	tests := []struct {
		in      string
		want    Size
		wantErr string
	}{
		{"0", 0, ""},
		{"1048576", 1 << 20, ""},
		{"512B", 512, ""},
		{"10KB", 10_000, ""},
		{"10kb", 10_000, ""},
		{"64KiB", 64 << 10, ""},
		{"512MiB", 512 << 20, ""},
		{"50GiB", 50 << 30, ""},
		{"50 GiB", 50 << 30, ""},
		{"1.5GB", 1_500_000_000, ""},
		{"0.5KiB", 512, ""},
		{"2TiB", 2 << 40, ""},
		{"3TB", 3e12, ""},
		{"", 0, "want a number"},
		{"GiB", 0, "want a number"},
		{"-1", 0, "want a number"},
		{"10XB", 0, `unknown unit "XB"`},
		{"10K", 0, `unknown unit "K"`},
		{"1.5", 0, "a fraction of a byte"},
		{"1.2.3GB", 0, "bad number"},
		{"9999999TiB", 0, "too large"},
		{"99999999999999999999", 0, "too large"},
	}
	for _, tt := range tests {
		got, err := ParseSize(tt.in)
		switch {
		case tt.wantErr == "" && (err != nil || got != tt.want):
			t.Errorf("ParseSize(%q) = %d, %v, want %d", tt.in, got, err, tt.want)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("ParseSize(%q) = %d, %v, want error containing %q", tt.in, got, err, tt.wantErr)
		}
	}
}

func TestSizeStringRoundTrip(t *testing.T) {
	for _, s := range []Size{0, 1, 1000, 1 << 10, 1536, 5 << 30, 50 << 30, 3 << 40, 1_500_000_000} {
		got, err := ParseSize(s.String())
		if err != nil || got != s {
			t.Errorf("ParseSize(%q) = %d, %v, want %d", s.String(), got, err, s)
		}
	}
	if got := Size(64 << 10).String(); got != "64KiB" {
		t.Errorf("Size(64<<10).String() = %q, want 64KiB", got)
	}
}

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in      string
		want    string
		wantErr string
	}{
		{"30s", "30s", ""},
		{"1m30s", "1m30s", ""},
		{"250ms", "250ms", ""},
		{"0", "0s", ""},
		{"30", "", "want a number with a unit"},
		{"1d", "", "want a number with a unit"},
		{"-5s", "", "negative"},
	}
	for _, tt := range tests {
		got, err := ParseDuration(tt.in)
		switch {
		case tt.wantErr == "" && (err != nil || got.String() != tt.want):
			t.Errorf("ParseDuration(%q) = %v, %v, want %s", tt.in, got, err, tt.want)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("ParseDuration(%q) = %v, %v, want error containing %q", tt.in, got, err, tt.wantErr)
		}
	}
}

func TestExpand(t *testing.T) {
	lookup := env("A", "alpha", "EMPTY", "", "DOLLAR", "$X ${A}")
	tests := []struct {
		in, want, wantErr string
	}{
		{"plain", "plain", ""},
		{"${A}", "alpha", ""},
		{"x-${A}-y", "x-alpha-y", ""},
		{"${A}${A}", "alphaalpha", ""},
		{"${EMPTY}", "", ""},
		{"${MISSING:-dflt}", "dflt", ""},
		{"${EMPTY:-dflt}", "dflt", ""},
		{"${A:-dflt}", "alpha", ""},
		{"${MISSING:-}", "", ""},
		{"$$", "$", ""},
		{"$${A}", "${A}", ""},
		{"a$b$", "a$b$", ""},
		{"${DOLLAR}", "$X ${A}", ""}, // values from the environment are not expanded again
		{"${MISSING}", "", "environment variable MISSING is not set"},
		{"${A", "", "unterminated"},
		{"${}", "", "invalid ${...}"},
		{"${A B}", "", "invalid ${...}"},
	}
	for _, tt := range tests {
		got, err := expand(tt.in, lookup)
		switch {
		case tt.wantErr == "" && (err != nil || got != tt.want):
			t.Errorf("expand(%q) = %q, %v, want %q", tt.in, got, err, tt.want)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("expand(%q) = %q, %v, want error containing %q", tt.in, got, err, tt.wantErr)
		}
	}
}

func TestEditDistance(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"listen", "listen", 0},
		{"listn", "listen", 1},
		{"endpiont", "endpoint", 1},
		{"regoin", "region", 1},
		{"", "abc", 3},
		{"kitten", "sitting", 3},
	}
	for _, tt := range tests {
		if got := editDistance(tt.a, tt.b); got != tt.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}
