// Package matcher performs private set intersection over the fixed-size
// tokens the room receives (HMAC tokens or fully encrypted ristretto255
// elements), for two or more members, within a bounded amount of memory.
//
// It sees only 32-byte tokens and row numbers, yields the join (for each
// token present in every set, the row number in each), and never hands
// tokens or their fingerprints back to its caller. It imports no other package of this project.
//
// # How
//
// Each set is read as a stream of (token, row) pairs. Each token becomes a
// 128-bit fingerprint: AES-128 in CBC-MAC over its two blocks, under a key
// drawn per run (sixteen tokens at a time in AVX-512 VAES where the CPU
// has it). Tokens come from partners who may be malicious; with a secret
// key, crafted tokens spread over partitions and table slots as random
// ones do, and two different tokens are taken for one only if their
// fingerprints collide: for the most rows the sets may hold, a probability
// under 2^-60 that no member can raise. The fingerprint's top bits choose
// the partition. Partitions are kept in fixed-size chunks, so a set costs
// 20 bytes a token with its row (16 without, for a count). When the chunks
// of all sets exceed the memory budget, full chunks are written to one
// spill file per set (unlinked at creation, so nothing stays on disk after
// a crash) and read back one partition at a time.
//
// Partitions are then joined independently on all cores: each worker builds
// an open-addressing table of one partition of every set, which finds the
// fingerprints present in all sets and the duplicates within each. A table
// holds at most a bounded number of distinct fingerprints (half the budget
// across the workers, or twice an average partition each if that is
// more): a partition with more, which only a member who could predict the
// key would make, is joined in parts, split by the fingerprint's next bits;
// repeats of one token take no room in a table.
//
// # Counting
//
// A count (Options.CardinalityOnly, as an upload's commit makes with
// Distinct) needs no rows, only which tokens are equal: its sets hold the
// fingerprints alone, and its tables keep the mask of the sets each was
// seen in within the fingerprint's partition bits.
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
