package model

import (
	"bytes"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
)

// sameAsRef scores in with ScoreCSV and with the reference (encoding/csv
// a record at a time) and fails unless both score the same rows with the
// same error, and write the same bytes when there is none.
func sameAsRef(t *testing.T, m *Model, in string) {
	t.Helper()
	var got, want bytes.Buffer
	n, err := m.ScoreCSV(strings.NewReader(in), &got, "score")
	wn, werr := m.scoreCSVRef(strings.NewReader(in), &want, "score")
	if n != wn || (err == nil) != (werr == nil) || err != nil && err.Error() != werr.Error() {
		t.Fatalf("scored %d rows, %v; the reference %d, %v", n, err, wn, werr)
	}
	if err == nil && !bytes.Equal(got.Bytes(), want.Bytes()) {
		t.Fatalf("wrote\n%q\nthe reference\n%q", got.String(), want.String())
	}
}

// TestScoreCSVAsEncodingCSV: ScoreCSV writes, counts and refuses exactly
// as encoding/csv and Model.score a record at a time, on the forms of CSV
// its fast path does not take (quotes, line breaks in fields, carriage
// returns, fields encoding/csv would quote) and on malformed input.
func TestScoreCSVAsEncodingCSV(t *testing.T) {
	m, err := Parse([]byte(validModel))
	if err != nil {
		t.Fatal(err)
	}
	for name, in := range map[string]string{
		"plain":                 "email,spend,band\na,10,x\nb,40,y\n",
		"no final newline":      "email,spend,band\na,10,x\nb,40,y",
		"crlf":                  "email,spend,band\r\na,10,x\r\nb,40,y\r\n",
		"final carriage return": "email,spend,band\na,10,x\r",
		"lone carriage return":  "email,spend,band\na\rb,10,x\n",
		"carriage returns":      "email,spend,band\na\r\r\nb,10,x\n",
		"empty lines":           "\n\r\nemail,spend,band\n\na,10,x\n\r\n\nb,40,y\n\n",
		"only a header":         "email,spend,band\n",
		"bom and quoted header": "\xEF\xBB\xBF\"email\",\"spend\",band\na,1,x\n",
		"header over lines":     "\"em\nail\",spend,band\na,10,x\n",
		"quoted fields":         "email,spend,band\n\"a\",\"10\",\"x\"\n\"b,c\",5,\"y\"\n",
		"doubled quotes":        "email,spend,band\n\"a\"\"b\",1,x\n",
		"field over lines":      "email,spend,band\n\"a\nb\r\nc\",99,x\nd,1,x\n",
		"leading space":         "email,spend,band\n a,10,x\n\ta,10, x\n",
		"unicode space":         "email,spend,band\n\u00a0a,10,x\n\u3000,1,x\n",
		"backslash dot":         "email,spend,band\n\\.,10,x\n\\a,1,x\n",
		"not utf-8":             "email,spend,band\n\xff\xfe,10,x\n",
		"empty fields":          "email,spend,band\n,,\n",
		"spend spaced":          "email,spend,band\na, 12 ,x\n",
		"too few fields":        "email,spend,band\na,1,x\nb,2\n",
		"too many fields":       "email,spend,band\na,1,x,y\n",
		"quoted too few":        "email,spend,band\na,1,x\n\"b\",2\n",
		"bare quote":            "email,spend,band\na,1,x\na\"b,1,x\nc,1,x\n",
		"extraneous quote":      "email,spend,band\n\"a\"b,1,x\nc,1,x\n",
		"unterminated":          "email,spend,band\na,1,x\n\"b,1,x\nc,2,y\n",
		"empty":                 "",
		"empty lines only":      "\n\r\n\n",
		"bad header":            "email,\"spend\"x,band\n",
		"missing column":        "email,band\na,x\n",
		"score column":          "email,spend,band,score\na,1,x,2\n",
	} {
		t.Run(name, func(t *testing.T) { sameAsRef(t, m, in) })
	}
}

// TestScoreCSVBlocks: an input of many blocks, whose records with quotes
// and line breaks fall across the blocks' natural cuts, is scored as the
// reference scores it, in order; and a malformed record deep in it is
// found at its line.
func TestScoreCSVBlocks(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	// A forest scored from its table, and one of too many cells for one.
	for _, tabled := range []bool{true, false} {
		m := randomModel(t, rng)
		for (m.tabulate(m.flatten()) != nil) != tabled {
			m = randomModel(t, rng)
		}
		t.Run(map[bool]string{true: "table", false: "trees"}[tabled], func(t *testing.T) { scoreBlocks(t, m, rng) })
	}
}

func scoreBlocks(t *testing.T, m *Model, rng *rand.Rand) {
	var sb strings.Builder
	cols := make([]string, len(m.Features))
	for i, f := range m.Features {
		cols[i] = f.Column
	}
	sb.WriteString("id," + strings.Join(cols, ",") + "\n")
	for sb.Len() < 5*blockSize {
		switch rng.IntN(50) {
		case 0:
			sb.WriteString("\"id\n" + strconv.Itoa(rng.IntN(1e6)) + "\"")
		case 1:
			sb.WriteString("\"a \"\"quoted\"\", id\"")
		case 2:
			sb.WriteString(" spaced")
		default:
			sb.WriteString("customer" + strconv.Itoa(rng.IntN(1e7)) + "@example.com")
		}
		for i := range m.Features {
			v := randomValue(&m.Features[i], rng)
			if rng.IntN(40) == 0 {
				v = "\"" + v + "\""
			}
			sb.WriteString("," + v)
		}
		if rng.IntN(30) == 0 {
			sb.WriteString("\r")
		}
		sb.WriteString("\n")
	}
	in := sb.String()
	sameAsRef(t, m, in)
	// A bare quote in the fourth block's last line.
	at := strings.LastIndexByte(in[:3*blockSize+blockSize/2], '\n') + 1
	sameAsRef(t, m, in[:at]+"x\"y"+in[at:])
	// A field count wrong in the third block.
	at = strings.LastIndexByte(in[:2*blockSize+100], '\n') + 1
	sameAsRef(t, m, in[:at]+"a\n"+in[at:])
}

// FuzzScoreCSV: on any input, ScoreCSV scores, writes and refuses as the
// reference does.
func FuzzScoreCSV(f *testing.F) {
	m, err := Parse([]byte(validModel))
	if err != nil {
		f.Fatal(err)
	}
	f.Add("email,spend,band\na,10,x\n\"b\nc\",5,y\r\n")
	f.Add("band,spend\n\"x\",\"1\"\n \\.,2\n")
	f.Add("\n\"band\",spend\r\nx,\"a\"\"\"\n")
	f.Fuzz(func(t *testing.T, in string) {
		sameAsRef(t, m, in)
	})
}
