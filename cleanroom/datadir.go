package cleanroom

import "path/filepath"

// DataDir is a room's one data directory:
//
//	room.json     the room's id and audit origin (public)
//	room.key      the Ed25519 seed that signs audit checkpoints (0600)
//	operator.key  the operator's partner-format key file (0600), made by init
//	checkpoint    the audit log's latest signed checkpoint, outside the
//	              database, so a database that went back is refused
//	db/           the Badger database with everything else
//	segments/     the upload parts, a file each, which keys in db/ name
//	              (store.Files)
type DataDir string

// Database returns the path of the room's Badger database.
func (d DataDir) Database() string { return filepath.Join(string(d), "db") }

// Segments returns the path of the directory of the room's segment files.
func (d DataDir) Segments() string { return filepath.Join(string(d), "segments") }

// InfoFile returns the path of the room's public identity file.
func (d DataDir) InfoFile() string { return filepath.Join(string(d), "room.json") }

// KeyFile returns the path of the room's checkpoint-signing key.
func (d DataDir) KeyFile() string { return filepath.Join(string(d), "room.key") }

// OperatorKeyFile returns the path init writes the operator's key to.
func (d DataDir) OperatorKeyFile() string { return filepath.Join(string(d), "operator.key") }

// AnchorFile returns the path of the audit log's anchor: its latest signed
// checkpoint, kept outside the database (audit.Options.Anchor).
func (d DataDir) AnchorFile() string { return filepath.Join(string(d), "checkpoint") }
