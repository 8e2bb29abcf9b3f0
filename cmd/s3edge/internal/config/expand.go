package config

import (
	"errors"
	"fmt"
	"strings"
)

// LookupFunc returns the value of an environment variable and whether it is
// set; os.LookupEnv is one.
type LookupFunc func(name string) (string, bool)

// expand replaces ${NAME} with the value of the environment variable NAME
// and ${NAME:-default} with its value, or default when it is unset or empty.
// "$$" is a literal "$"; a "$" followed by anything else is kept as it is.
// An unset variable without a default is an error that names it. Values
// that come from the environment are not expanded again.
func expand(s string, lookup LookupFunc) (string, error) {
	if !strings.Contains(s, "$") {
		return s, nil
	}
	var b strings.Builder
	for {
		i := strings.IndexByte(s, '$')
		if i < 0 || i == len(s)-1 {
			b.WriteString(s)
			return b.String(), nil
		}
		b.WriteString(s[:i])
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			s = s[i+2:]
			continue
		case '{':
		default:
			b.WriteByte('$')
			s = s[i+1:]
			continue
		}
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			return "", errors.New("unterminated ${ (write $$ for a literal $)")
		}
		ref := s[i+2 : i+end]
		s = s[i+end+1:]
		name, def, hasDef := strings.Cut(ref, ":-")
		if !validEnvName(name) {
			// The text is not echoed: it may be part of a secret.
			return "", errors.New("invalid ${...}: want ${NAME} or ${NAME:-default}, NAME made of letters, digits and _ (write $$ for a literal $)")
		}
		v, ok := lookup(name)
		switch {
		case hasDef && v == "":
			v = def
		case !ok:
			return "", fmt.Errorf("environment variable %s is not set (write ${%s:-default} to give a default)", name, name)
		}
		b.WriteString(v)
	}
}

func validEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || i > 0 && c >= '0' && c <= '9' {
			continue
		}
		return false
	}
	return true
}
