package cleanroom

import (
	"errors"
	"maps"

	"github.com/opencleanroom/cleanroom/cleanroom/internal/store"
)

// Receipts. Each part an upload receives has a receipt, a sealed record of
// its own written in the part's audit entry: the upload's record does not
// grow with its parts, and a part costs the same however many came before.
// The upload's record names the entry of its latest part (PartsChanged),
// which is all a commit checks on the audit log's writer. A record written
// by a room that kept receipts in it (Received) is read with them, and the
// first part it receives gives each of them a record of its own.

// partInfo is the receipt of a part an upload received (partReceipts).
type partInfo struct {
	Part   int    `json:"part"`
	Rows   int    `json:"rows"`
	Digest string `json:"digest"`
	Bytes  int64  `json:"bytes"`
}

// received returns the receipts of the parts u has received, by part.
func received(t store.Txn, u *uploadRecord) (map[int]partInfo, error) {
	got := maps.Clone(u.Received)
	if got == nil {
		got = map[int]partInfo{}
	}
	err := store.ScanParts(t, partReceipts, u.ID, func(info *partInfo) error {
		got[info.Part] = *info
		return nil
	})
	return got, err
}

// receipt returns the receipt of part of u, if it was received.
func receipt(t store.Txn, u *uploadRecord, part int) (partInfo, bool, error) {
	info, err := partReceipts.Get(t, store.PartOf{Upload: u.ID, Part: part})
	switch {
	case errors.Is(err, store.ErrNotFound):
		info, ok := u.Received[part]
		return info, ok, nil
	case err != nil:
		return partInfo{}, false, err
	}
	return *info, true, nil
}

// moveReceipts gives each receipt u's record holds (Received) a record of
// its own, unless it has one, and empties Received; the caller writes u.
// Then no receipt in the record can stand for a part stored since, even
// once a deletion stopped midway took the part's own receipt, and the
// record is as small as any other.
func moveReceipts(tx *store.Tx, u *uploadRecord) error {
	for p, info := range u.Received {
		id := store.PartOf{Upload: u.ID, Part: p}
		switch ok, err := partReceipts.Exists(tx.Txn, id); {
		case err != nil:
			return err
		case ok:
			continue
		}
		info.Part = p
		if err := partReceipts.Put(tx, id, &info); err != nil {
			return err
		}
	}
	u.Received = map[int]partInfo{}
	return nil
}
