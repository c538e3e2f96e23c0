package client

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/crypto"
)

// BenchmarkRows is the reading side of an upload on a 100,000-row export
// like the demo's (a third of its emails quoted and padded, as a CRM
// writes those with spaces): the CSV read, each identifier's match key and
// the values encoded into 50,000-row parts. keys=batch is the uploader's
// KeyBatch, keys=single MatchKey row by row, in the same run.
func BenchmarkRows(b *testing.B) {
	const rows = 100_000
	path := demoLikeCSV(b, rows)
	p, err := crypto.LookupProfile(crypto.ProfileGmailv1, crypto.ProfileOptions{})
	if err != nil {
		b.Fatal(err)
	}
	columns := []string{"age_band", "region", "revenue", "exposed", "campaign_cost"}
	const perPart = 50_000
	b.Run("keys=batch", func(b *testing.B) {
		benchFileOrder(b, path, p, columns, perPart, rows)
	})
	b.Run("keys=single", func(b *testing.B) {
		keys := make([]crypto.MatchKey, 0, perPart)
		part := api.Part{Columns: len(columns)}
		b.ReportAllocs()
		for b.Loop() {
			err := csvRows(path, "email", columns, func(line int, id string, a []string, _ int64) error {
				k, err := p.MatchKey(crypto.KindEmail, id)
				if err != nil {
					return err
				}
				if err := part.AppendValues(a); err != nil {
					return err
				}
				if keys = append(keys, k); part.Rows == perPart {
					keys = keys[:0]
					part.Reset()
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(rows*b.N)/b.Elapsed().Seconds(), "rows/s")
	})
}

// BenchmarkOrderedRows is the reading side of an upload as it runs: the
// CSV read, the match keys and the values into the spill, then the spill
// read back in the upload's order into 50,000-row parts (handed to a
// sender that only gives them back), over a 1,000,000-row export like the
// demo's. rows=file is the read in the file's order (keys, values, parts)
// in the same run, for the order's cost.
func BenchmarkOrderedRows(b *testing.B) {
	const rows = 1_000_000
	path := demoLikeCSV(b, rows)
	p, err := crypto.LookupProfile(crypto.ProfileGmailv1, crypto.ProfileOptions{})
	if err != nil {
		b.Fatal(err)
	}
	ks, err := crypto.NewSecret(nil)
	if err != nil {
		b.Fatal(err)
	}
	columns := []string{"age_band", "region", "revenue", "exposed", "campaign_cost"}
	const perPart = 50_000
	b.Run("rows=ordered", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			spec := UploadSpec{Collab: "c1", Input: path, IDColumn: "email", Kind: crypto.KindEmail, Columns: columns, State: StateDir(b.TempDir())}
			s := &partSender{spec: spec, st: &uploadState{RowsPerPart: perPart, Digests: map[int]string{}}, order: newRowOrder(ks, "bench"), read: -1}
			r := s.newPartReader(p, nil, &UploadReport{})
			done := make(chan struct{})
			go func() {
				defer close(done)
				for bt := range r.todo {
					r.free <- bt
				}
			}()
			err := r.readAll(context.Background())
			close(r.todo)
			<-done
			if err != nil {
				b.Fatal(err)
			}
			if r.rep.Rows != rows {
				b.Fatalf("%d rows read, want %d", r.rep.Rows, rows)
			}
		}
		b.ReportMetric(float64(rows*b.N)/b.Elapsed().Seconds(), "rows/s")
	})
	b.Run("rows=file", func(b *testing.B) {
		benchFileOrder(b, path, p, columns, perPart, rows)
	})
}

// demoLikeCSV writes an export of rows customers like the demo's, a third
// of the emails quoted and padded.
func demoLikeCSV(b *testing.B, rows int) string {
	path := filepath.Join(b.TempDir(), "in.csv")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriter(f)
	fmt.Fprintln(w, "email,age_band,region,revenue,exposed,campaign_cost")
	for i := range rows {
		email := fmt.Sprintf("customer%07d@example.com", i)
		if i%3 == 0 {
			email = fmt.Sprintf("\" Customer%07d@example.com \"", i)
		}
		fmt.Fprintf(w, "%s,25-34,west,%d.19,true,3.50\n", email, i%200)
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	return path
}

// BenchmarkWriteAudience maps an audience of a tenth of a 1,000,000-row
// upload back to its file: the file read twice, each valid record placed
// in the upload's order, the places spilled in groups and sorted a group
// at a time (B/op: what the mapping holds does not grow with the list).
func BenchmarkWriteAudience(b *testing.B) {
	const rows = 1_000_000
	path := demoLikeCSV(b, rows)
	p, root, _, _ := uploadedState(b, path)
	aud := &api.Audience{Collaboration: "c1", Upload: "up-1", Rows: rows}
	for r := 0; r < rows; r += 10 {
		aud.Audience = append(aud.Audience, uint32(r))
	}
	in := AudienceInput{Collab: "c1", Room: "room-1", Input: path, IDColumn: "email", Kind: crypto.KindEmail, State: root}
	b.ReportAllocs()
	for b.Loop() {
		n, err := WriteAudience(context.Background(), p, in, aud, io.Discard)
		if err != nil || n != len(aud.Audience) {
			b.Fatalf("%d records written, want %d: %v", n, len(aud.Audience), err)
		}
	}
	b.ReportMetric(float64(rows*b.N)/b.Elapsed().Seconds(), "rows/s")
}

// uploadedState makes a state directory (room "room-1", collaboration
// "c1") whose latest upload, "up-1", was made from the file at path, and
// returns the collaboration's profile, the directory, its secret and the
// file's fingerprint: what WriteAudience needs to map an audience of it.
func uploadedState(tb testing.TB, path string) (crypto.Profile, StateDir, *crypto.Secret, string) {
	tb.Helper()
	p, err := crypto.LookupProfile(crypto.ProfileGmailv1, crypto.ProfileOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	root := StateDir(tb.TempDir())
	state, err := root.Room("room-1")
	if err != nil {
		tb.Fatal(err)
	}
	ks, err := crypto.NewSecret(nil)
	if err != nil {
		tb.Fatal(err)
	}
	if err := state.save("c1", "alpha", []string{"alpha", "bravo"}, ks); err != nil {
		tb.Fatal(err)
	}
	scan, err := scanInput(context.Background(), path, 0)
	if err != nil {
		tb.Fatal(err)
	}
	if err := state.saveCommitted("c1", &uploadState{Upload: "up-1", Input: scan.fingerprint}); err != nil {
		tb.Fatal(err)
	}
	return p, root, ks, scan.fingerprint
}

// benchFileOrder reads path's rows in file order into parts of perPart
// rows, their match keys and values, as an upload in file order would.
func benchFileOrder(b *testing.B, path string, p crypto.Profile, columns []string, perPart, rows int) {
	kb := p.NewKeyBatch(perPart)
	part := api.Part{Columns: len(columns)}
	b.ReportAllocs()
	for b.Loop() {
		err := csvRows(path, "email", columns, func(line int, id string, a []string, _ int64) error {
			if err := kb.Add(crypto.KindEmail, id); err != nil {
				return err
			}
			if err := part.AppendValues(a); err != nil {
				return err
			}
			if part.Rows == perPart {
				kb.Keys()
				kb.Reset()
				part.Reset()
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(rows*b.N)/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkBoundedCount is what reading a numeric column's value costs the
// upload, to count it not a number or outside its bounds (UploadReport):
// values as the demo writes its revenue, most in bounds.
func BenchmarkBoundedCount(b *testing.B) {
	vals := make([]string, 4096)
	for i := range vals {
		vals[i] = strconv.FormatFloat(float64(i%20000)/100, 'f', -1, 64)
	}
	c := boundedColumn{lo: 0, hi: 150}
	for b.Loop() {
		for _, v := range vals {
			c.count(v)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(vals)), "ns/value")
}
