package api

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestPartRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	w := NewPartWriter(&buf)
	var rows []Row
	for i := range 100 {
		// Plain values take the writer's fast path; the others need escaping.
		r := Row{Attrs: []string{fmt.Sprint(i), "x\"y\\z", "ünïcode", "", "a<b&c", "tab\there", "\x7f"}}
		r.Token[0], r.Token[31] = byte(i), 0xff
		rows = append(rows, r)
		if err := w.Write(&r); err != nil {
			t.Fatal(err)
		}
	}
	digest, err := w.Close()
	if err != nil {
		t.Fatal(err)
	}
	i := 0
	n, got, err := ReadPart(&buf, PartLimits{Columns: 7, MaxRows: 100}, func(r *Row) error {
		if r.Token != rows[i].Token || strings.Join(r.Attrs, "|") != strings.Join(rows[i].Attrs, "|") {
			t.Errorf("row %d differs", i)
		}
		i++
		return nil
	})
	if err != nil || n != 100 || got != digest {
		t.Fatalf("ReadPart: %d rows, digest %s (want %s), %v", n, got, digest, err)
	}
}

func TestReadPartRefuses(t *testing.T) {
	tok := strings.Repeat("A", 43) + "="
	for _, tc := range []struct {
		name, body string
		rows       int
	}{
		{"two columns for one", `{"t":"` + tok + `","a":["a","b"]}`, 10},
		{"unknown field", `{"t":"` + tok + `","a":["a"],"email":"x"}`, 10},
		{"short token", `{"t":"AAAA","a":["a"]}`, 10},
		{"long value", `{"t":"` + tok + `","a":["` + strings.Repeat("v", MaxValueLen+1) + `"]}`, 10},
		{"too many rows", `{"t":"` + tok + `","a":["a"]}` + "\n" + `{"t":"` + tok + `","a":["a"]}`, 1},
		{"trailing value", `{"t":"` + tok + `","a":["a"]} {}`, 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := ReadPart(bytes.NewReader(gzipped(tc.body+"\n")), PartLimits{Columns: 1, MaxRows: tc.rows}, func(*Row) error { return nil })
			if !errors.Is(err, ErrInvalidPart) {
				t.Fatalf("got %v, want ErrInvalidPart", err)
			}
			if strings.Contains(err.Error(), "vvvv") || strings.Contains(err.Error(), "email") {
				t.Errorf("error echoes input: %v", err)
			}
		})
	}
}

func gzipped(s string) []byte {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	w.Write([]byte(s))
	w.Close()
	return b.Bytes()
}

// FuzzReadPart: the part parser never panics, and what it accepts has the
// declared shape.
func FuzzReadPart(f *testing.F) {
	tok := strings.Repeat("A", 43) + "="
	f.Add(gzipped(`{"t":"`+tok+`","a":["a"]}`+"\n"), 1)
	f.Add(gzipped(`{"t":"`+tok+`","a":[]}`), 0)
	f.Add([]byte("not gzip"), 2)
	f.Fuzz(func(t *testing.T, body []byte, columns int) {
		if columns < 0 || columns > MaxColumns {
			return
		}
		_, _, err := ReadPart(bytes.NewReader(body), PartLimits{Columns: columns, MaxRows: 64}, func(r *Row) error {
			if len(r.Attrs) != columns {
				t.Fatalf("row with %d attributes accepted, want %d", len(r.Attrs), columns)
			}
			return nil
		})
		_ = err
	})
}

func ExampleReadPart() {
	var part bytes.Buffer
	w := NewPartWriter(&part)
	w.Write(&Row{Token: [32]byte{1}, Attrs: []string{"25-34"}})
	w.Write(&Row{Token: [32]byte{2}, Attrs: []string{"35-44"}})
	w.Close()
	n, _, err := ReadPart(&part, PartLimits{Columns: 1, MaxRows: 10}, func(r *Row) error {
		fmt.Println(r.Token[0], r.Attrs[0])
		return nil
	})
	fmt.Println(n, err)
	// Output:
	// 1 25-34
	// 2 35-44
	// 2 <nil>
}

// FuzzFastRow: whatever the fast path accepts, encoding/json reads the
// same way.
func FuzzFastRow(f *testing.F) {
	tok := strings.Repeat("A", 43) + "="
	f.Add(`{"t":"`+tok+`","a":["a","b"]}`, 2)
	f.Add(`{"t":"`+tok+`","a":[]}`, 0)
	f.Add(`{"t":"`+tok+`","a":["\u00e9",""]}`, 2)
	f.Add(`{"t":"`+tok+`","a":["a",]}`, 1)
	f.Fuzz(func(t *testing.T, line string, columns int) {
		var w1, w2 wireRow
		var r1, r2 Row
		if !fastRow([]byte(line), &r1, &w1, columns) {
			return
		}
		if err := slowRow([]byte(line), &w2, &r2, columns); err != nil {
			t.Fatalf("fast path accepted what encoding/json refuses: %v", err)
		}
		if r1.Token != r2.Token || strings.Join(r1.Attrs, "\x00") != strings.Join(r2.Attrs, "\x00") {
			t.Fatalf("fast and slow paths disagree")
		}
	})
}
