// Package matcher performs private set intersection over the fixed-size
// tokens the room receives (HMAC tokens or fully encrypted ristretto255
// elements), for two or more members, within a bounded amount of memory.
//
// It sees only 32-byte tokens and row numbers, yields the join (for each
// token present in every set, the row number in each), and never hands
// tokens back to its caller. It imports no other package of this project.
//
// # How
//
// Each set is read as a stream of (token, row) pairs and split into
// partitions by a keyed hash of the token (a secret key drawn per run:
// tokens come from partners who may be malicious, and a fixed split would
// let one craft tokens that all land in one partition). Partitions are
// kept in fixed-size chunks, so a set costs about 36 bytes a token. When
// the chunks of all sets exceed the memory budget, full chunks are written
// to one spill file per set (unlinked at creation, so nothing stays on disk
// after a crash) and read back one partition at a time.
//
// Partitions are then joined independently on all cores: each worker builds
// an open-addressing table of one partition of every set, which finds the
// tokens present in all sets and the duplicates within each. Equal hashes
// are always confirmed on the whole token, so a collision, crafted or not,
// never makes unequal tokens match. A table holds at most a bounded number
// of distinct tokens (half the budget across the workers, or twice an
// average partition each if that is more): a
// partition with more, which only a member who could predict the key would
// make, is joined in parts, split under a second independent key; repeats
// of one token take no room in a table.
//
// # Counting
//
// A count (Options.CardinalityOnly, as an upload's commit makes with
// Distinct) needs no rows and no tokens, only which tokens are equal. Each
// token is then stored as a 128-bit fingerprint under a key drawn per run
// (AES-128 in CBC-MAC, sixteen tokens at a time in AVX-512 VAES where the
// CPU has it): 16 bytes a token where a pair takes 36, so less than half
// the memory and, past the budget, a fraction of the spilling. The counts
// are exact unless two different tokens' fingerprints collide, which for
// the most rows a set may hold has a probability under 2^-60 and, the key
// being secret, no member can aim for.
//
// # Duplicates
//
// A token that appears more than once in one set is kept at its lowest
// row, which is its first occurrence in the member's own list whatever
// order the set is read in (a relayed set arrives shuffled); the others are
// dropped and counted in SetStats.Duplicates, exactly, for every set, and
// with Options.DuplicateRows their rows are listed.
//
// # Order
//
// Matches are emitted in no particular order (it depends on the random
// seed); callers that need an order sort by row.
package matcher
