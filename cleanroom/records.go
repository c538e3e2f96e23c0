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
	secrets       = store.Secrets[api.SealedSecret]()
	policySources = store.PolicySources[[]byte]()
	digestKeys    = store.DigestKeys()

	activationRecords = store.Activations[activationRecord]()
)

// txn reads txn with the room's sealer.
func (r *Room) txn(txn *badger.Txn) store.Txn { return store.Txn{Txn: txn, Sealer: r.sealer} }

// stateTx binds txn to the audit entry (index, leaf) it commits with.
func (r *Room) stateTx(txn *badger.Txn, index int64, leaf tlog.Hash) *store.Tx {
	return &store.Tx{Txn: r.txn(txn), Index: index, Leaf: leaf}
}
