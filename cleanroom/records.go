package cleanroom

import (
	"github.com/dgraph-io/badger/v4"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/cleanroom/internal/store"
)

// The room's sealed records, each family bound to its record type here
// and nowhere else; package store gives their keys.
var (
	principals    = store.Principals[principalRecord]()
	collabs       = store.Collabs[collabRecord]()
	budgets       = store.Budgets[budgetRecord]()
	uploads       = store.Uploads[uploadRecord]()
	partReceipts  = store.PartReceipts[partInfo]()
	secrets       = store.Secrets[api.SealedSecret]()
	policySources = store.PolicySources[[]byte]()
	digestKeys    = store.DigestKeys()

	activationRecords = store.Activations[activationRecord]()
)

// recordCaches hold, decoded, the records every request reads: the caller's
// principal, the collaboration it asks about and its ledger. A record read
// through them is checked against the stored one on every read
// (store.Cache) and shared: only readers that do not change it use them.
type recordCaches struct {
	principals *store.Cache[principalRecord]
	collabs    *store.Cache[collabRecord]
	budgets    *store.Cache[budgetRecord]
}

// newRecordCaches makes the caches; with check, every read that finds its
// record cached panics if a reader modified it (tests turn it on).
func newRecordCaches(check bool) recordCaches {
	return recordCaches{
		principals: store.NewCache[principalRecord](4096, check),
		collabs:    store.NewCache[collabRecord](1024, check),
		budgets:    store.NewCache[budgetRecord](1024, check),
	}
}

// txn reads txn with the room's sealer.
func (r *Room) txn(txn *badger.Txn) store.Txn { return store.Txn{Txn: txn, Sealer: r.sealer} }

// stateTx binds txn to the audit entry (index, leaf) it commits with.
func (r *Room) stateTx(txn *badger.Txn, index int64, leaf tlog.Hash) *store.Tx {
	return &store.Tx{Txn: r.txn(txn), Index: index, Leaf: leaf}
}
