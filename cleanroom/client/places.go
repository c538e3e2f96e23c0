package client

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
)

// places maps an audience's upload rows back to the file's records in
// memory that does not grow with the list: each valid record's place
// (rowOrder.at) and index in the file go, as the file is read, into files
// of the state directory grouped by the top bits of the place, and the
// groups are read back one at a time, in the upload's order, each sorted.
// Held whole, the places of a list of 50M took 800 MB (16 bytes a record);
// a group holds at most about placesGroupRows records. A list of up to
// placesGroupRows records is one group, kept in memory, with no file.
//
// A group's file holds, for each record in file order, its place (8 bytes)
// and how far its index is past the group's previous record's (a uvarint,
// a byte or two): about 10 bytes a record. The files hold no identifier,
// and are removed once the audience is mapped, and any that a killed run
// left when the next one starts.
type places struct {
	bits  uint // of a place that name its group; 0: one group, in memory
	files []*os.File
	w     []*bufio.Writer
	last  []int64 // each group's last index written
	count int64   // records added
	rows  []orderedRow
	data  []byte // a group's file read back
}

// placesGroupRows is about how many records a group holds: its places
// (16 bytes a record, 1 MiB) then sit in a core's cache while they are
// sorted. maxSpillBits bounds the files open at once, so a group of a list
// of more than 2^25 records holds more.
const placesGroupRows = 1 << 16

// placesPattern names the spill files of an audience of collab's.
func placesPattern(collab string) string { return collab + ".audience-*" }

// newPlaces makes the places of a list of rows records, in groups of
// about groupRows (placesGroupRows but in tests), spilled to files in dir
// if there is more than one.
func newPlaces(dir, collab string, rows, groupRows int64) (*places, error) {
	p := &places{}
	for p.bits < maxSpillBits && rows > groupRows<<p.bits {
		p.bits++
	}
	removePlaces(dir, collab)
	if p.bits == 0 {
		p.rows = make([]orderedRow, 0, max(0, rows))
		return p, nil
	}
	p.last = make([]int64, 1<<p.bits)
	var err error
	if p.files, p.w, err = createGroupFiles(dir, placesPattern(collab), 1<<p.bits, 16<<10); err != nil {
		return nil, err
	}
	return p, nil
}

// removePlaces removes the spill files of audiences of collab in dir.
func removePlaces(dir, collab string) { removeGroupFiles(dir, placesPattern(collab)) }

// add adds the record at index n of the file, of place at. Records are
// added in file order.
func (p *places) add(at uint64, n int64) error {
	p.count++
	if p.bits == 0 {
		p.rows = append(p.rows, orderedRow{at: at, n: int(n)})
		return nil
	}
	g := at >> (64 - p.bits)
	w := p.w[g]
	if w.Available() < 8+binary.MaxVarintLen64 {
		if err := w.Flush(); err != nil {
			return err
		}
	}
	b := binary.LittleEndian.AppendUint64(w.AvailableBuffer(), at)
	b = binary.AppendUvarint(b, uint64(n-p.last[g]))
	p.last[g] = n
	_, err := w.Write(b)
	return err
}

// groups is how many groups there are, in the upload's order.
func (p *places) groups() int { return 1 << p.bits }

// group returns group g's records in the upload's order. They are the
// places' until the next call.
func (p *places) group(g int) ([]orderedRow, error) {
	if p.bits == 0 {
		sortPlaces(p.rows, 0)
		return p.rows, nil
	}
	if err := p.w[g].Flush(); err != nil {
		return nil, err
	}
	f := p.files[g]
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return nil, err
	}
	if int64(cap(p.data)) < size {
		p.data = make([]byte, size)
	}
	p.data = p.data[:size]
	if _, err := f.ReadAt(p.data, 0); err != nil {
		return nil, err
	}
	rows, b := p.rows[:0], p.data
	if most := len(b) / 9; cap(rows) < most {
		rows = make([]orderedRow, 0, most)
	}
	n := int64(0)
	for len(b) > 0 {
		if len(b) < 9 {
			return nil, errors.New("client: the audience's spill file is cut short")
		}
		at := binary.LittleEndian.Uint64(b)
		d, k := binary.Uvarint(b[8:])
		if k <= 0 || at>>(64-p.bits) != uint64(g) || d > uint64(p.count) {
			return nil, errors.New("client: the audience's spill file is damaged")
		}
		n += int64(d)
		rows = append(rows, orderedRow{at: at, n: int(n)})
		b = b[8+k:]
	}
	sortPlaces(rows, p.bits)
	p.rows = rows
	return rows, nil
}

// pick returns the file indices of the records at the given ranks of the
// upload's order (each below the records added), sorted. It reads every
// group once; ranks is sorted in place.
func (p *places) pick(ranks []uint32) ([]int64, error) {
	slices.Sort(ranks)
	for i := 1; i < len(ranks); i++ {
		if ranks[i] == ranks[i-1] {
			return nil, errors.New("client: the room's audience names a row twice")
		}
	}
	if len(ranks) > 0 && int64(ranks[len(ranks)-1]) >= p.count {
		return nil, fmt.Errorf("client: the room's audience names row %d of an upload of %d", ranks[len(ranks)-1], p.count)
	}
	want := make([]int64, 0, len(ranks))
	base := int64(0)
	for g := range p.groups() {
		if len(ranks) == 0 {
			break
		}
		rows, err := p.group(g)
		if err != nil {
			return nil, err
		}
		end := base + int64(len(rows))
		for len(ranks) > 0 && int64(ranks[0]) < end {
			want = append(want, int64(rows[int64(ranks[0])-base].n))
			ranks = ranks[1:]
		}
		base = end
	}
	slices.Sort(want)
	return want, nil
}

// remove closes and deletes the spill's files.
func (p *places) remove() {
	for _, f := range p.files {
		f.Close()
		os.Remove(f.Name())
	}
	p.files = nil
}
