package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Size is a byte count written with an optional unit: 512, 10KB, 1.5GB,
// 512MiB, 50GiB. Decimal units (KB, MB, GB, TB) are powers of 1000, binary
// units (KiB, MiB, GiB, TiB) powers of 1024; unit names are case-insensitive
// and may follow the number after a space.
type Size int64

var sizeUnits = map[string]float64{
	"":    1,
	"b":   1,
	"kb":  1e3,
	"mb":  1e6,
	"gb":  1e9,
	"tb":  1e12,
	"kib": 1 << 10,
	"mib": 1 << 20,
	"gib": 1 << 30,
	"tib": 1 << 40,
}

// ParseSize parses a size with an optional unit.
func ParseSize(s string) (Size, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && (t[i] >= '0' && t[i] <= '9' || t[i] == '.') {
		i++
	}
	num, unit := t[:i], strings.ToLower(strings.TrimSpace(t[i:]))
	if num == "" {
		return 0, fmt.Errorf("invalid size %q: want a number of bytes with an optional unit (KB, MB, GB, TB, KiB, MiB, GiB, TiB)", s)
	}
	mult, ok := sizeUnits[unit]
	if !ok {
		return 0, fmt.Errorf("invalid size %q: unknown unit %q (want B, KB, MB, GB, TB, KiB, MiB, GiB or TiB)", s, t[i:])
	}
	n, err := strconv.ParseInt(num, 10, 64)
	switch {
	case err == nil && n > math.MaxInt64/int64(mult), errors.Is(err, strconv.ErrRange):
		return 0, fmt.Errorf("invalid size %q: too large", s)
	case err == nil:
		return Size(n * int64(mult)), nil
	}
	if unit == "" || unit == "b" {
		return 0, fmt.Errorf("invalid size %q: a fraction of a byte", s)
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, fmt.Errorf("invalid size %q: bad number", s)
	}
	v := f * mult
	if v >= math.MaxInt64 {
		return 0, fmt.Errorf("invalid size %q: too large", s)
	}
	return Size(math.Round(v)), nil
}

// String renders the size with the largest binary unit that divides it
// exactly, else in bytes: ParseSize(s.String()) == s.
func (s Size) String() string {
	for _, u := range []struct {
		name string
		n    int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if s != 0 && int64(s)%u.n == 0 {
			return strconv.FormatInt(int64(s)/u.n, 10) + u.name
		}
	}
	return strconv.FormatInt(int64(s), 10)
}

// UnmarshalYAML parses a scalar with ParseSize.
func (s *Size) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return errors.New("want a size such as 512MiB")
	}
	v, err := ParseSize(n.Value)
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// MarshalYAML renders the size as String does.
func (s Size) MarshalYAML() (any, error) { return s.String(), nil }

// Duration is a time.Duration written Go-style: 30s, 1m30s, 250ms. A bare
// number other than 0 is an error, so that "30" is not read as 30ns.
type Duration time.Duration

// ParseDuration parses a non-negative Go duration.
func ParseDuration(s string) (Duration, error) {
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q: want a number with a unit such as 30s, 5m or 1h30m", s)
	}
	if d < 0 {
		return 0, fmt.Errorf("invalid duration %q: negative", s)
	}
	return Duration(d), nil
}

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }

// UnmarshalYAML parses a scalar with ParseDuration.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return errors.New("want a duration such as 30s")
	}
	v, err := ParseDuration(n.Value)
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// MarshalYAML renders the duration Go-style.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// Secret is a string that does not print itself: String, GoString, slog
// and YAML output show "[redacted]" (or "" when empty). Use string(s) where
// the value is really needed.
type Secret string

const redacted = "[redacted]"

func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return redacted
}

// GoString is String, so that %#v does not reveal the secret either.
func (s Secret) GoString() string { return strconv.Quote(s.String()) }

// LogValue keeps the secret out of structured logs.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalYAML keeps the secret out of configuration dumps.
func (s Secret) MarshalYAML() (any, error) { return s.String(), nil }

// MarshalJSON keeps the secret out of JSON logs of a struct that holds it.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }
