package cleanroom

import (
	"io"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/cleanroom/internal/store"
	"github.com/opencleanroom/cleanroom/matcher"
)

// A member's dataset, as the room holds it for matching: the upload's
// segments (layer 1), then, in blinded mode, each layer the relay adds.

// datasetRecord is a member's committed dataset in a collaboration.
type datasetRecord struct {
	Upload      string    `json:"upload"`
	Rows        int64     `json:"rows"` // data rows; rows >= Rows are canaries
	Columns     []string  `json:"columns"`
	Digest      string    `json:"digest"`
	Kind        string    `json:"kind"`
	Profile     string    `json:"profile"`
	RowsPerPart int       `json:"rows_per_part"`
	Parts       int       `json:"parts"`
	Uploaded    time.Time `json:"uploaded"`
	// Layers is how many members' keys the set carries. Layer 1 is the
	// upload's segments; layer L > 1 is store.Layer(upload, L), in
	// LayerParts parts of (element, row) pairs.
	Layers     int `json:"layers"`
	LayerParts int `json:"layer_parts,omitempty"`
	// Canary holds the canary tokens of the current layer, in the order of
	// CanaryIdentifiers.
	Canary [][]byte `json:"canary"`
	// First marks the member's first dataset in the collaboration, whose
	// first relay offer is the one that goes unmasked (relay.go).
	First bool `json:"first,omitempty"`
	// RelayRefused names the member whose re-encryption of the set failed
	// the room's probes: the set goes no further (relayprobe.go).
	RelayRefused string `json:"relay_refused,omitempty"`
}

func (d *datasetRecord) ready(c *collabRecord) bool {
	return c.Mode == api.ModeHashed || d.Layers >= len(c.Members)
}

func (d *datasetRecord) view(c *collabRecord) *api.Dataset {
	if d == nil {
		return nil
	}
	return &api.Dataset{Upload: d.Upload, Rows: d.Rows, Columns: orEmpty(d.Columns), Digest: d.Digest, Kind: d.Kind,
		Profile: d.Profile, Layers: d.Layers, Ready: d.ready(c), Uploaded: d.Uploaded, RelayRefused: d.RelayRefused}
}

// layerReader streams the (element, row) pairs of a dataset's current
// layer, one stored part at a time; with canaries, the canary rows are
// included. It is a matcher.Reader.
type layerReader struct {
	r        *Room
	ds       *datasetRecord
	canaries bool
	part     int // next stored part to load
	buf      []matcher.Pair
	pos      int
	done     bool
}

func (r *Room) newLayerReader(ds *datasetRecord, canaries bool) *layerReader {
	return &layerReader{r: r, ds: ds, canaries: canaries, buf: make([]matcher.Pair, 0, taskPartSize)}
}

// Read implements matcher.Reader.
func (l *layerReader) Read(dst []matcher.Pair) (int, error) {
	for l.pos == len(l.buf) {
		if l.done {
			return 0, io.EOF
		}
		if err := l.load(); err != nil {
			return 0, err
		}
	}
	n := copy(dst, l.buf[l.pos:])
	l.pos += n
	return n, nil
}

func (l *layerReader) load() error {
	l.buf, l.pos = l.buf[:0], 0
	ds := l.ds
	if ds.Layers > 1 {
		if l.part == ds.LayerParts {
			l.done = true
			return nil
		}
		l.part++
		return l.r.withSegment(store.Layer(ds.Upload, ds.Layers).Key(l.part-1), func(b []byte) error {
			return store.EachPair(b, func(elem []byte, row uint32) {
				if l.canaries || int64(row) < ds.Rows {
					pr := matcher.Pair{Row: row}
					copy(pr.Token[:], elem)
					l.buf = append(l.buf, pr)
				}
			})
		})
	}
	if l.part == ds.Parts {
		// The first layer's canaries come with the upload, after its rows.
		if l.canaries {
			for i, t := range ds.Canary {
				var pr matcher.Pair
				copy(pr.Token[:], t)
				pr.Row = uint32(ds.Rows) + uint32(i)
				l.buf = append(l.buf, pr)
			}
		}
		l.done = true
		return nil
	}
	base := uint32(l.part * ds.RowsPerPart)
	l.part++
	return l.r.withSegment(store.Segments(ds.Upload).Key(l.part-1), func(b []byte) error {
		p, err := store.DecodePart(b)
		if err != nil {
			return err
		}
		for i := range p.Rows {
			pr := matcher.Pair{Row: base + uint32(i)}
			copy(pr.Token[:], p.Token(i))
			l.buf = append(l.buf, pr)
		}
		return nil
	})
}

// withSegment reads one stored segment, checked, from its file or in place
// in Badger (store.Files.ReadSegment), and calls fn with it: b is valid
// only during fn.
func (r *Room) withSegment(key []byte, fn func(b []byte) error) error {
	return r.db.View(func(txn *badger.Txn) error { return r.files.ReadSegment(txn, key, r.resident, fn) })
}

// wroteSegment notes that the n-byte segment at key has been written and,
// once a run of segments has been, releases the value log's mapping that
// holds them (store.Resident): what is written now is not read again until
// a later step. Releasing is a hint: the segment is stored either way, so
// its failure is not the caller's.
func (r *Room) wroteSegment(key []byte, n int) {
	if r.resident.Wrote(n) {
		_ = r.db.View(func(txn *badger.Txn) error { return store.ReleaseSegment(txn, key) })
	}
}

// orEmpty answers an empty list as [], never null.
func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
