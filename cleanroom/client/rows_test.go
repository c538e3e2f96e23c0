package client

import (
	"fmt"
	"os"
	"path/filepath"
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
	path := filepath.Join(b.TempDir(), "in.csv")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	fmt.Fprintln(f, "email,age_band,region,revenue,exposed,campaign_cost")
	const rows = 100_000
	for i := range rows {
		email := fmt.Sprintf("customer%07d@example.com", i)
		if i%3 == 0 {
			email = fmt.Sprintf("\" Customer%07d@example.com \"", i)
		}
		fmt.Fprintf(f, "%s,25-34,west,%d.19,true,3.50\n", email, i%200)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	p, err := crypto.LookupProfile(crypto.ProfileGmailv1, crypto.ProfileOptions{})
	if err != nil {
		b.Fatal(err)
	}
	columns := []string{"age_band", "region", "revenue", "exposed", "campaign_cost"}
	const perPart = 50_000
	b.Run("keys=batch", func(b *testing.B) {
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
