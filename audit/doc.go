// Package audit is the room's tamper-evident log: an append-only Merkle log
// (RFC 6962 hashing) on Badger, with signed checkpoints (C2SP signed-note,
// Ed25519), inclusion and consistency proofs, and export bundles that a
// compliance officer verifies offline. Entries hold digests and sizes of the
// data touched, never the data.
//
// # Entries
//
// An Entry says who did what to which collaboration, what the policy
// decided, and digests of the data touched, in a canonical JSON encoding
// (ParseEntry refuses any other) whose RFC 6962 leaf hash is stored with it
// in the transaction that appends it (AppendTx lets the caller's state
// change share that transaction). Result and spec digests are keyed
// (HMAC-SHA256 under a key only the collaboration's members hold), so that
// the log can be shown to an auditor without letting the auditor test
// guesses of a low-entropy result (a count, an answer without noise) or of
// the query asked.
//
// # Budget
//
// An entry records the privacy budget its action charged, EpsilonMicro, in
// the ledger's integer unit (1 ε = 1,000,000 micro-epsilon). An entry is
// appended in the transaction that debits the budget, and a debit that
// fails leaves no entry, so the allowed entries of a collaboration sum to
// what its ledger spent: ReconcileBudget (or a BudgetLedger fed by
// VerifyEntries) computes that sum from a verified bundle.
//
// # Bundles
//
// Export writes a full bundle (BundleFormat): every entry of a range, from
// which the verifier recomputes the tree and checks it against the signed
// checkpoints. ExportScoped writes a sparse bundle (SparseBundleFormat): the
// entries a Scope selects (some collaborations' entries, and some
// principals' room-level ones), each with its inclusion proof to the latest
// signed checkpoint, for an auditor who may see only those. Both carry
// earlier checkpoints with consistency proofs (the reader's own, when the
// export names its size, and a full bundle's from inside its range), and
// Verify checks
// either offline with the room's verifier key alone, naming the first bad
// entry. A sparse bundle proves that each entry it holds is in the signed
// log, unedited, at its index; it cannot prove that nothing in scope was
// left out (only a full bundle shows every entry), and its checkpoints tell
// the log's total size.
//
// A scoped export reads a scope index (collaboration or principal → entry
// indexes) written in each entry's transaction, so its cost grows with the
// entries selected, not with the log: on a 100,000-entry log, one
// collaboration's 5,000 entries export with their proofs in about a
// quarter of the time a read of every entry takes (BenchmarkExportScoped).
//
// The portable half (entries, checkpoints, both bundle formats and their
// verification) is package audit/bundle, whose names this package re-exports:
// a verifier on another machine imports it without Badger.
//
// # Failures
//
// A batch the store refuses before writing (a disk full at staging, a
// transaction too large) fails its appends and the log goes on. A conflict
// (a write outside the log to a key a fn read, between the staging and the
// commit) makes the batch be staged again on what is committed now, each
// fn seeing that write, up to maxStagings times before it fails. A commit the store may
// have applied and then failed (a failed sync) leaves the log's size
// unknown, so the log stops (ErrStopped, Log.Err) until it is reopened.
//
// OpenForExport reads a stopped room's store without changing it, also
// after a crash, when Badger can only open it read-write (it recovers a
// copy).
package audit
