// Package store is the layout of a room's Badger database: every key family
// the room writes, the records and formats stored under them, and how they
// are checked when read. The room spells no key itself: it names a family
// and an id here, and deletes through the same functions that write.
//
// The families, each with what one key holds:
//
//	principal/<id>                       Principals: a registered principal (sealed record)
//	collab/<id>                          Collabs: a collaboration (sealed record)
//	budget/<collab>                      Budgets: a collaboration's privacy ledger (sealed record)
//	upload/<id>                          Uploads: an upload in progress or committed (sealed record)
//	upart/<upload>/<part>                PartReceipts: the receipt of a part an upload received (sealed record)
//	cupload/<collab>/<upload>            CollabUpload: an upload of the collaboration's (no value)
//	meta/uploads-indexed                 UploadsIndexed: every upload has its CollabUpload key (no value)
//	secret/<collab>/<to>                 Secrets: a collaboration secret sealed to one member (sealed record)
//	policysrc/<collab>/<hash>            PolicySources: a pending or active module's source (sealed record)
//	digestkey/<collab>                   DigestKeys: a collaboration's result-digest key (sealed, unbound)
//	activation/<collab>                  Activations: a collaboration's activations (sealed record)
//	statehw/<record key>                 the high-water mark of a sealed record (Tx.Put, Check)
//	seg/<upload>/<part>                  Segments: an upload part (a reference to its file, Files)
//	layer/<upload>/<layer>/<part>        Layer: a relayed set's (element, row) pairs (segment)
//	task/<task>/<part>                   TaskParts: a relay task's shuffled elements, then their rows (segment)
//	tcanary/<task>/<part>                TaskCanaries: the canary pairs a task's part returned (segment)
//	join/<collab>/<run>/<part>           Join: a match run's rows, one per member a match (segment)
//	join/<collab>/<run>/dups/<member>    Duplicates: a member's rows the run dropped (segment)
//	audience/<collab>/<id>               Audience: the fingerprints of an activated audience (segment)
//	jti/<issuer>/<sha256(jti)>           JTIKey: a token seen, until it expires (no value)
//
// Ids are principal, collaboration, upload and task names, which never
// contain "/", and numbers; part numbers are eight decimal digits, so a
// family's parts sort in order. The audit log keeps its own keys under
// "audit/" (package audit), in the same database, so that a state change
// and the entry recording it commit together.
//
// Sealed records (seal.go) are bound to the audit entry that wrote them
// and MACed with a key only the room holds; segments (segment.go) carry a
// CRC-32C against decay on disk, which the whole-database check reads,
// while a read in place relies on Badger's checksum of the same bytes.
// Upload parts, most of a room's data, are kept in files of their own
// beside the database (Files, files.go), which their keys name and which a
// read checks against their seal and the key's reference. Resident
// (resident.go) drops the value log's pages from the process once a run of
// the segments kept in Badger has been read or written.
package store
