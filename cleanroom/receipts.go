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
// parts it receives next give them records of their own (moveReceipts).

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

// moveReceipts gives the receipts u's record holds (Received) records of
// their own, unless they have one, and takes them out of Received, which
// the caller writes: part's always, so that no receipt in the record stands
// for a part stored since, even once a deletion stopped midway took the
// part's own receipt, and at most maxMovedReceipts others, so that a record
// of many receipts empties over its next parts without one transaction
// outgrowing Badger's limit.
func moveReceipts(tx *store.Tx, u *uploadRecord, part int) error {
	if len(u.Received) == 0 {
		return nil
	}
	delete(u.Received, part)
	moved := 0
	for p, info := range u.Received {
		if moved == maxMovedReceipts {
			break
		}
		id := store.PartOf{Upload: u.ID, Part: p}
		switch ok, err := partReceipts.Exists(tx.Txn, id); {
		case err != nil:
			return err
		case !ok:
			info.Part = p
			if err := partReceipts.Put(tx, id, &info); err != nil {
				return err
			}
		}
		delete(u.Received, p)
		moved++
	}
	return nil
}

// maxMovedReceipts bounds the receipts moveReceipts writes in one part's
// transaction: about 300 KB, of the 9.6 MB Badger takes in one.
const maxMovedReceipts = 1024
