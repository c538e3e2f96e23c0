package store

import (
	"bytes"
	"errors"
	"testing"

	"github.com/dgraph-io/badger/v4"
)

// TestDamagedValueArrivesEmpty pins how Badger reports a value log value
// that fails its checksum, which openChecked relies on: Item.Value logs the
// mismatch and hands the callback an empty value, with no error (Badger
// v4's yieldItemValue), so a damaged segment is refused because it is
// shorter than its seal, not by an error from Badger. Should a Badger
// upgrade return an error instead, this fails: ReadSegment must then turn
// that error into ErrCorruptSegment (y.Wrapf does not wrap with %w, so
// errors.Is on y.ErrChecksumMismatch does not find it).
func TestDamagedValueArrivesEmpty(t *testing.T) {
	dir := t.TempDir()
	db, err := badger.Open(checkingOptions(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	key := []byte("raw/1")
	value := make([]byte, 64<<10)
	for i := range value {
		value[i] = byte(i*7 + i>>9)
	}
	if err := db.Update(func(txn *badger.Txn) error { return txn.Set(key, value) }); err != nil {
		t.Fatal(err)
	}
	flipIn(t, dir, value, len(value)/2)
	var got []byte
	calls := 0
	err = db.View(func(txn *badger.Txn) error {
		it, err := txn.Get(key)
		if err != nil {
			return err
		}
		return it.Value(func(v []byte) error { calls++; got = bytes.Clone(v); return nil })
	})
	if err != nil || calls != 1 || len(got) != 0 {
		t.Fatalf("a damaged value: err %v, %d calls, %d bytes; want no error and one call with an empty value", err, calls, len(got))
	}
}

// TestOpenCheckedRefusesShort: every value shorter than a seal, the empty
// one Badger hands out for a damaged value included, or without the tag,
// is ErrCorruptSegment.
func TestOpenCheckedRefusesShort(t *testing.T) {
	sealed := SealSegment([]byte("payload"))
	for _, v := range [][]byte{nil, {}, sealed[:1], sealed[:SegmentSeal-1], append([]byte("crc2"), sealed[4:]...)} {
		if _, err := openChecked([]byte("k"), v); !errors.Is(err, ErrCorruptSegment) {
			t.Errorf("%d bytes %q: err %v, want ErrCorruptSegment", len(v), v, err)
		}
	}
	if b, err := openChecked([]byte("k"), sealed); err != nil || string(b) != "payload" {
		t.Fatalf("a sound segment: %q, %v", b, err)
	}
	if b, err := openChecked([]byte("k"), SealSegment(nil)); err != nil || len(b) != 0 {
		t.Fatalf("an empty sound segment: %q, %v", b, err)
	}
}
