package cleanroom

import "path/filepath"

// DataDir is a room's one data directory. Everything the room keeps lives in
// the Badger database under Database(): metadata, datasets, match runs, the
// replay cache and the audit log (under its own key prefix), so that a state
// change and its audit entry can commit in one transaction.
type DataDir string

// Database returns the path of the room's Badger database.
func (d DataDir) Database() string { return filepath.Join(string(d), "db") }
