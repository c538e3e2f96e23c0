// Package columnar is the format in which a room exports a collaboration's
// committed datasets for an engine outside its process (the Beam pipelines
// of module github.com/opencleanroom/cleanroom/beam): each member's tokens
// with their row numbers, and its attribute columns, split into shards by
// a keyed hash of the token so that the shards of all members can be
// matched independently, shard s of one member against shard s of the
// others, on as many workers as there are shards.
//
// # Layout
//
// An export is a directory:
//
//	manifest.json           what follows, with each file's size and SHA-256
//	<m>/pairs-<s>.bin       member m's (token, row) pairs whose token is in shard s
//	<m>/cols-<s>.bin        the attribute values of the same rows, by row
//
// m is the member's index in the collaboration's order, s the shard, both
// in decimal, the shard zero-padded to four digits. The manifest is written
// last: a directory without one is an export that did not finish.
//
// A pairs file is the 8 bytes "crpairs1", then blocks until the end of the
// file, each
//
//	u32 n (1..65536), n × 32-byte tokens, n × u32 rows
//
// A cols file is the 8 bytes "crcols01", a u16 column count c (as in the
// manifest), then blocks, each
//
//	u32 n (1..65536), n × u32 rows (ascending across the whole file),
//	then for each of the c columns: u32 L, n × u32 end offsets, L bytes
//
// where value i of a column is its bytes from end offset i-1 (0 for the
// first) to end offset i. Integers are little-endian. Values are the
// uploaded attribute values, byte for byte.
//
// Every row of a member's dataset (0 to rows-1 in the manifest) has exactly
// one pair and one set of values, in the same shard. A token may repeat
// within a member's list: the engine keeps it at its lowest row, as package
// matcher does. Canary rows are not exported.
//
// # Why not Parquet
//
// Parquet would need a Parquet library in the room's module (its writer),
// whose build the small binary should not pay, for data that is two fixed
// width columns and a few byte-string columns: this layout is the part of
// Parquet this data uses (column chunks in row groups, read column by
// column), a page of code to read or write, and fuzzed.
//
// # Shards
//
// The shard of a token is a keyed hash of it (hash/maphash, a random seed
// per export) modulo the shard count. Honest tokens are uniform, so a plain
// prefix would do for them; a member may send crafted tokens, and with a
// key it does not know it cannot pile them into one shard and stall the
// worker that joins it.
package columnar
