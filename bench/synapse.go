package bench

import (
	"fmt"
	"math/rand/v2"

	"github.com/s3edge/s3edge/bench/zipf"
)

// Synapse-like traffic (see ../shared/SYNAPSE.md and DESIGN.md): a
// homeserver writes an original and then its thumbnails, and clients fetch
// the thumbnails at once; older media is read with a Zipf popularity;
// s3_media_upload HEADs runs of keys to learn which are already uploaded,
// many of them missing. Keys have Synapse's layout.

const (
	synapseUploadShare = 0.10 // steps that upload a new media item
	synapseHeadShare   = 0.10 // steps that are a HEAD burst
	synapseHeadBurst   = 20   // HEADs per burst
	synapseHeadMissing = 0.25 // share of burst keys that do not exist
	synapseThumbReads  = 0.70 // reads of older media that fetch a thumbnail
)

var synapseThumbs = []string{"32-32-image-jpeg-crop", "96-96-image-jpeg-crop", "320-240-image-jpeg-scale", "640-480-image-jpeg-scale"}

// mediaID returns a Synapse-style media path part, "ab/cd/rest".
func mediaID(r *rand.Rand) string {
	const letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	b := make([]byte, 24)
	for i := range b {
		b[i] = letters[r.IntN(len(letters))]
	}
	return string(b[:2]) + "/" + string(b[2:4]) + "/" + string(b[4:])
}

func synapseWorkload(cfg *Config) (*workload, error) {
	r := rand.New(rand.NewPCG(cfg.Seed, 0x5e1a))
	w := &workload{name: "synapse"}
	origSize := func() int64 { return 200<<10 + r.Int64N(1848<<10) } // 200 KiB – 2 MiB
	thumbSize := func() int64 { return 10<<10 + r.Int64N(40<<10) }   // 10 – 50 KiB

	// Older media: an original and two thumbnails each.
	type media struct{ orig, thumbs []object }
	older := make([]media, cfg.SynapseMedia)
	var seeded int64
	for i := range older {
		id := mediaID(r)
		m := media{orig: []object{{"local_content/" + id, origSize()}}}
		for _, t := range synapseThumbs[:2] {
			m.thumbs = append(m.thumbs, object{"local_thumbnails/" + id + "/" + t, thumbSize()})
		}
		older[i] = m
		for _, o := range append(m.orig, m.thumbs...) {
			w.objects = append(w.objects, o)
			seeded += o.size
		}
	}
	z, err := zipf.New(len(older), 1.0)
	if err != nil {
		return nil, err
	}
	// Popularity is independent of upload order.
	popular := r.Perm(len(older))

	var steps []step
	var uploaded int64
	var uploads, reads, heads int
	for range cfg.SynapseSteps {
		switch x := r.Float64(); {
		case x < synapseUploadShare:
			uploads++
			id := mediaID(r)
			s := step{putRequest(cfg.Seed, "local_content/"+id, origSize())}
			var gets step
			for _, t := range synapseThumbs {
				k := "local_thumbnails/" + id + "/" + t
				s = append(s, putRequest(cfg.Seed, k, thumbSize()))
				gets = append(gets, request{op: opGet, key: k, want: int64(len(s[len(s)-1].body))})
			}
			for _, q := range s {
				uploaded += int64(len(q.body))
			}
			steps = append(steps, append(s, gets...))
		case x < synapseUploadShare+synapseHeadShare:
			heads++
			var s step
			start := r.IntN(len(older))
			for j := range synapseHeadBurst {
				if r.Float64() < synapseHeadMissing {
					s = append(s, request{op: opHead, key: "local_content/" + mediaID(r), miss: true})
					continue
				}
				s = append(s, request{op: opHead, key: older[(start+j)%len(older)].orig[0].key})
			}
			steps = append(steps, s)
		default:
			reads++
			m := older[popular[z.Rank(r)]]
			o := m.orig[0]
			if r.Float64() < synapseThumbReads {
				o = m.thumbs[r.IntN(len(m.thumbs))]
			}
			steps = append(steps, step{{op: opGet, key: o.key, want: o.size}})
		}
	}
	w.cacheBytes = (seeded + uploaded) / 4
	w.desc = fmt.Sprintf("%d steps by %d clients: %d uploads (original 200KiB–2MiB, 4 thumbnails 10–50KiB PUT then GET at once), "+
		"%d Zipf reads of %d older media (%.0f%% thumbnails), %d bursts of %d HEADs (%.0f%% missing keys); cache %s (25%% of all bytes)",
		len(steps), cfg.SynapseClients, uploads, reads, len(older), 100*synapseThumbReads, heads, synapseHeadBurst,
		100*synapseHeadMissing, sizeName(w.cacheBytes))
	w.phases = []*phase{{name: "synapse", rounds: [][]step{steps}, concurrency: cfg.SynapseClients, maxTime: cfg.TraceTimeout}}
	return w, nil
}

// putRequest returns the PUT of size bytes of key's content.
func putRequest(seed uint64, key string, size int64) request {
	body := content(seed, key, size)
	return request{op: opPut, key: key, body: body, bodySHA: sha256Hex(body)}
}
