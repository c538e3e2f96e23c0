package analytics

import (
	"math"
	"strconv"
	"testing"
)

// TestToScaled: a decimal with up to MaxScale places and an int32's
// digits is held at its places or more, and reads back bit for bit;
// other values are refused, never rounded.
func TestToScaled(t *testing.T) {
	for _, tc := range []struct {
		text  string
		scale int
		ok    bool
	}{
		{"0", 0, true},
		{"123.45", 2, true},
		{"123.45", 5, true},
		{"123.45", 1, false},
		{"-25", 0, true},
		{"780.5", 3, true},
		{"0.1", 1, true},
		{"2147483647", 0, true},
		{"2147483648", 0, false},
		{"-2147483647", 0, true},
		{"-2147483648", 0, false}, // NotNumber
		{"21474836.48", 2, false},
		{"0.000000001", 9, true},
		{"0.0000000001", MaxScale, false},
		{"-0", 0, true}, // read as 0
		{"1e300", 0, false},
		{"9.99", 2, true},
		{"n/a", 0, true}, // not a number: held as NotNumber
	} {
		v := ParseNumber([]byte(tc.text))
		m, ok := ToScaled(v, tc.scale)
		if ok != tc.ok {
			t.Errorf("%s at %d places: ok %v, want %v", tc.text, tc.scale, ok, tc.ok)
			continue
		}
		if !ok {
			continue
		}
		s := scaled{ints: []int32{m}, div: pow10[tc.scale]}
		if got := s.value(0); math.Float64bits(got) != math.Float64bits(v) && !(v != v && got != got) && !(v == 0 && got == 0) {
			t.Errorf("%s at %d places reads back %v", tc.text, tc.scale, got)
		}
	}
}

// FuzzToScaled: a decimal of frac places is held at any scale from frac
// to MaxScale where its digits fit an int32, and whatever ToScaled holds
// reads back bit for bit.
func FuzzToScaled(f *testing.F) {
	f.Add(uint32(12345), true, uint8(2), uint8(2))
	f.Add(uint32(7), false, uint8(0), uint8(3))
	f.Fuzz(func(t *testing.T, mant uint32, neg bool, places, scale uint8) {
		frac, s := int(places%12), int(scale%12)
		digits := strconv.FormatUint(uint64(mant), 10)
		for len(digits) <= frac {
			digits = "0" + digits
		}
		text := digits
		if frac > 0 {
			text = digits[:len(digits)-frac] + "." + digits[len(digits)-frac:]
		}
		if neg {
			text = "-" + text
		}
		v := ParseNumber([]byte(text))
		m, ok := ToScaled(v, s)
		if !ok {
			if frac <= s && s <= MaxScale && float64(mant)*math.Pow10(s-frac) < math.MaxInt32 {
				t.Fatalf("%s at %d places refused", text, s)
			}
			return
		}
		c, err := NewScaledColumn([]int32{m}, s)
		if err != nil {
			t.Fatal(err)
		}
		if got := c.value(0); math.Float64bits(got) != math.Float64bits(v) && !(v == 0 && got == 0) {
			t.Fatalf("%s at %d places reads back %v", text, s, got)
		}
	})
}

// TestDictionaryBytes: a column's bytes are its codes' or numbers' and its
// dictionary's, which a column held as numbers has none of.
func TestDictionaryBytes(t *testing.T) {
	dict, err := NewDictColumn([]uint32{0, 1, 0}, []string{"a", "bb"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := dict.DictionaryBytes(), int64(2*25+3); got != want {
		t.Errorf("dictionary of a and bb: %d bytes, want %d", got, want)
	}
	if got, want := dict.Bytes(), int64(3*4+2*25+3); got != want {
		t.Errorf("column: %d bytes, want %d", got, want)
	}
	if got := NewNumberColumn([]float64{1, 2, 3}).DictionaryBytes(); got != 0 {
		t.Errorf("numbers: a dictionary of %d bytes", got)
	}
}

// FuzzParseDecimal: a value ParseDecimal reads is m / 10^places, the very
// float64 ParseNumber reads (a negative zero as 0), at the fewest places;
// a plain decimal, with spaces around it or not, is one it reads.
func FuzzParseDecimal(f *testing.F) {
	for _, v := range []string{"19.99", "-0.50", " 7 ", "+3.", ".25", "1e3", "n/a", "", "-0", "0.000",
		"4503599627370495", "4503599627370496", "0.0000000000000000000001", "1.00000000000000000000000",
		"\u00a012\u00a0", "12\t", "--1", "1.2.3", "9999999999999999999", "00000000000000000001.5"} {
		f.Add([]byte(v))
	}
	f.Fuzz(func(t *testing.T, v []byte) {
		want := ParseNumber(v)
		m, places, ok := ParseDecimal(v)
		if !ok {
			t.Skip()
		}
		if places < 0 || places >= len(pow10) || (places > 0 && m%10 == 0) {
			t.Fatalf("%q: %d at %d places: not the fewest", v, m, places)
		}
		got := DecimalValue(m, places)
		if math.Float64bits(got) != math.Float64bits(want) && !(want == 0 && got == 0) {
			t.Fatalf("%q: %d at %d places is %v, ParseNumber reads %v", v, m, places, got, want)
		}
	})
}

// TestParseDecimalReads: the forms a file's numbers take are read as
// decimals; anything else is left to ParseNumber.
func TestParseDecimalReads(t *testing.T) {
	for _, tc := range []struct {
		in     string
		m      int64
		places int
		ok     bool
	}{
		{"19.99", 1999, 2, true}, {"-0.50", -5, 1, true}, {" 7 ", 7, 0, true}, {"+3.", 3, 0, true},
		{".25", 25, 2, true}, {"100", 100, 0, true}, {"1.000", 1, 0, true}, {"-0", 0, 0, true},
		{"1e3", 0, 0, false}, {"n/a", 0, 0, false}, {"", 0, 0, false}, {".", 0, 0, false},
		{"4503599627370496", 0, 0, false}, {"1.2.3", 0, 0, false}, {"--1", 0, 0, false},
	} {
		m, places, ok := ParseDecimal([]byte(tc.in))
		if m != tc.m || places != tc.places || ok != tc.ok {
			t.Errorf("ParseDecimal(%q) = %d, %d, %v; want %d, %d, %v", tc.in, m, places, ok, tc.m, tc.places, tc.ok)
		}
	}
}
