// Package bundle is the portable half of the room's audit log: what leaves
// the room and is checked elsewhere, without the storage engine. It holds
// the canonical entry encoding (Entry, ParseEntry), signed checkpoints
// (C2SP tlog-checkpoint in a C2SP signed note, Ed25519), RFC 6962 inclusion
// and consistency checks, the two export bundle formats (BundleFormat, every
// entry of a range; SparseBundleFormat, selected entries each with its
// inclusion proof), their offline verification (Verify, VerifyEntries) and
// the privacy budget reconciled from verified entries (ReconcileBudget).
//
// Package audit writes the log on Badger and exports these bundles; it
// re-exports every name here, so the room and the CLI use one API. A
// verifier on an auditor's or a partner's machine (cleanroom audit verify,
// the console) imports this package alone: it depends on nothing but
// golang.org/x/mod's signed notes and tlog hashing.
package bundle
