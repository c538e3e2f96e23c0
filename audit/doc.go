// Package audit is the room's tamper-evident log: an append-only Merkle log
// (RFC 6962 hashing) on Badger, with signed checkpoints (C2SP signed-note,
// Ed25519), inclusion and consistency proofs, and an export bundle that a
// compliance officer verifies offline. Entries hold digests and sizes of the
// data touched, never the data.
package audit
