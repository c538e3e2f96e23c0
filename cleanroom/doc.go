// Package cleanroom is the room: the service that receives partners' hashed
// or blinded identifiers, relays blinded sets for re-encryption, matches them
// with package matcher, and answers aggregate questions about the overlap. It
// composes crypto, matcher, policy and audit, which never import it.
//
// # One rule for every request
//
// Every request is authenticated (a JWT signed by the caller's own registered
// key, see auth.go), decided by the collaboration's policy, and recorded in
// the audit log before it takes effect; a state change commits in the same
// Badger transaction as its audit entry (audit.Log.AppendTx), so the log
// cannot miss an action that happened, and if the audit append fails the
// action fails (fail closed). Bulk data (upload parts, relayed elements) is
// written first under keys nothing reads until that transaction makes it
// visible, so a crash leaves no partial dataset.
//
// # Storage
//
// One data directory (DataDir): the room's identity files, and one Badger
// database holding principals, collaborations, uploads and their
// checksummed segments, relay tasks, join tables, the token replay cache,
// the privacy budget and the audit log. Package cleanroom/internal/store
// owns its layout: every key family, the records and formats stored under
// them, and how each is checked when read.
//
// The HTTP interface is described in cleanroom/api and its openapi.yaml.
package cleanroom
