package cache

import (
	"go/build"
	"strings"
	"testing"
)

// TestImportDirection keeps the architecture's arrows pointing one way:
// cmd → proxy → cache/upstream/policy, and the leaf packages importing none
// of the project's packages above them.
func TestImportDirection(t *testing.T) {
	const mod = "github.com/s3edge/s3edge/"
	allowed := map[string][]string{
		"cache":                 {"cache/"},
		"cache/blob":            nil,
		"cache/indexdb":         nil,
		"cache/tinylfu":         nil,
		"policy":                nil,
		"proxy/sigv4":           nil,
		"proxy/checksum":        nil,
		"upstream":              nil,
		"upstream/embedded":     {"upstream"},
		"upstream/upstreamtest": {"upstream"},
		"proxy":                 {"cache", "policy", "upstream", "proxy/"},
	}
	for pkg, ok := range allowed {
		p, err := build.Import(mod+pkg, "", 0)
		if err != nil {
			t.Fatalf("import %s: %v", pkg, err)
		}
		for _, imp := range p.Imports {
			rel, ours := strings.CutPrefix(imp, mod)
			if !ours {
				continue
			}
			permitted := false
			for _, a := range ok {
				if rel == a || strings.HasSuffix(a, "/") && strings.HasPrefix(rel, a) {
					permitted = true
				}
			}
			if !permitted {
				t.Errorf("%s imports %s: the arrows point the other way", pkg, rel)
			}
		}
	}
}
