package client

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/opencleanroom/cleanroom/crypto"
)

// TestCSVRowsLines: the line numbers csvRows gives rows and errors are the
// lines of the file, past blank lines, quoted fields that span lines and a
// byte-order mark.
func TestCSVRowsLines(t *testing.T) {
	long := strings.Repeat("v", 300)
	for _, tc := range []struct {
		name    string
		in      string
		invalid []int  // lines of the rows with an invalid identifier
		rows    []int  // lines of the valid rows
		err     string // the error, if any
	}{
		{"plain", "email,note\na@example.org,x\nnot-an-email,x\nb@example.org,x\n", []int{3}, []int{2, 4}, ""},
		{"a byte-order mark", bom + "email,note\r\na@example.org,x\r\nnot-an-email,x\r\n", []int{3}, []int{2}, ""},
		{"blank lines", "email,note\n\na@example.org,x\n\n\nnot-an-email,x\n", []int{6}, []int{3}, ""},
		{"a quoted field over lines", "email,note\na@example.org,\"two\nlines\"\nnot-an-email,x\nb@example.org,\"three\n\nlines\"\nnot-an-email,x\n", []int{4, 8}, []int{2, 5}, ""},
		{"a malformed line after a quoted field over lines", "email,note\na@example.org,\"two\nlines\"\nb@example.org,x\"y\n", nil, []int{2}, "malformed at line 4"},
		{"a short record after a quoted field over lines", "email,note\na@example.org,\"two\nlines\"\n\nb@example.org\n", nil, []int{2}, "malformed at line 5"},
		{"a value too long after a quoted field over lines", "email,note\na@example.org,\"two\nlines\"\nb@example.org," + long + "\n", nil, []int{2, 4}, "line 4: "},
		{"an unterminated quote", "email,note\na@example.org,x\nb@example.org,\"open\nmore\n", nil, []int{2}, "malformed at line 4, in the record that starts on line 3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "in.csv")
			if err := os.WriteFile(path, []byte(tc.in), 0o600); err != nil {
				t.Fatal(err)
			}
			profile, err := crypto.LookupProfile(crypto.ProfilePAIRv1, crypto.ProfileOptions{})
			if err != nil {
				t.Fatal(err)
			}
			var invalid, rows []int
			err = csvRows(path, "email", []string{"note"}, func(line int, id string, attrs []string, _ int64) error {
				if _, kerr := profile.MatchKey(crypto.KindEmail, id); kerr != nil {
					invalid = append(invalid, line)
					return nil
				}
				rows = append(rows, line)
				// As the uploader does: a value is checked as it joins a part.
				if len(attrs[0]) > 256 {
					return lineError(line, errors.New("attribute too long"))
				}
				return nil
			})
			if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
				t.Fatalf("csvRows = %v, want %q", err, tc.err)
			}
			if !slices.Equal(invalid, tc.invalid) || !slices.Equal(rows, tc.rows) {
				t.Fatalf("invalid rows on lines %v, valid on %v; want %v and %v", invalid, rows, tc.invalid, tc.rows)
			}
		})
	}
}

// TestScanInput: the rows counted before an upload are the records after
// the header, up to the count asked for and one more, and the fingerprint
// follows the bytes, all of them.
func TestScanInput(t *testing.T) {
	dir := t.TempDir()
	scanUpTo := func(in string, upTo int64) inputScan {
		t.Helper()
		path := filepath.Join(dir, "in.csv")
		if err := os.WriteFile(path, []byte(in), 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := scanInput(context.Background(), path, upTo)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	scan := func(in string) inputScan { t.Helper(); return scanUpTo(in, math.MaxInt64-1) }
	for _, tc := range []struct {
		in   string
		rows int64
	}{
		{"", 0},
		{"email\n", 0},
		{bom + "email\r\n", 0},
		{"email\na\nb\nc", 3},
		{"email\na\n\n\r\nb\n\n", 2},
		{"email,note\na,\"x\ny\nz\"\nb,\"\"\"\n\"\n", 2},
		{bom + "email\r\na\r\nb\r\n", 2},
	} {
		if got := scan(tc.in).rows; got != tc.rows {
			t.Errorf("%q: %d rows, want %d", tc.in, got, tc.rows)
		}
	}
	if scan("email\na\n").fingerprint == scan("email\nb\n").fingerprint {
		t.Error("two inputs, one fingerprint")
	}
	// Counting stops past upTo rows; the fingerprint still covers the
	// whole input, its last byte included.
	long := "email\n" + strings.Repeat("someone@example.com\n", 200_000)
	for _, upTo := range []int64{1, 10, 199_999, 200_000, 200_001} {
		got := scanUpTo(long, upTo)
		if got.rows <= min(upTo, 199_999) || got.rows > 200_000 {
			t.Errorf("upTo %d: %d rows counted, want more than %d and at most 200,000", upTo, got.rows, min(upTo, 199_999))
		}
		if upTo >= 200_000 && got.rows != 200_000 {
			t.Errorf("upTo %d: %d rows, want all 200,000", upTo, got.rows)
		}
		if got.fingerprint != scan(long).fingerprint || got.fingerprint == scanUpTo(long[:len(long)-2]+"n\n", upTo).fingerprint {
			t.Errorf("upTo %d: the fingerprint does not follow the whole input", upTo)
		}
	}
	// A minimum of MaxInt64 (a room's constraint) counts every row, not none.
	if got := scanUpTo("email\na\nb\n", math.MaxInt64).rows; got != 2 {
		t.Errorf("upTo MaxInt64: %d rows counted, want 2", got)
	}
	if got := scanUpTo("email\na\nb\n", 2).rows; got != 2 {
		t.Errorf("exactly upTo rows: %d counted, want 2", got)
	}
}

// BenchmarkScanInput reads a 100,000-row export for its fingerprint and its
// rows up to a minimum list size of 1,000, the pass an upload makes before
// it encrypts anything (rows=all: every row counted).
func BenchmarkScanInput(b *testing.B) {
	var sb strings.Builder
	sb.WriteString("email,age_band,region,revenue\n")
	for i := range 100_000 {
		if i%3 == 0 {
			sb.WriteString("\" Customer@example.com \",25-34,west,10.50\n")
		} else {
			sb.WriteString("customer@example.com,25-34,west,10.50\n")
		}
	}
	path := filepath.Join(b.TempDir(), "in.csv")
	if err := os.WriteFile(path, []byte(sb.String()), 0o600); err != nil {
		b.Fatal(err)
	}
	for _, upTo := range []int64{1000, math.MaxInt64 - 1} {
		name := "rows=1000"
		if upTo > 100_000 {
			name = "rows=all"
		}
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(sb.Len()))
			b.ReportAllocs()
			for b.Loop() {
				if s, err := scanInput(context.Background(), path, upTo); err != nil || s.rows <= min(upTo, 99_999) {
					b.Fatal(s, err)
				}
			}
		})
	}
}
