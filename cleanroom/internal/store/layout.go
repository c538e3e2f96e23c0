package store

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/dgraph-io/badger/v4"
)

// The families' prefixes. Callers never use them: they name a family and
// an id through the functions below, which are the only places keys are
// spelled.
const (
	principalPrefix    = "principal/"
	collabPrefix       = "collab/"
	budgetPrefix       = "budget/"
	uploadPrefix       = "upload/"
	partReceiptPrefix  = "upart/"
	collabUploadPrefix = "cupload/"
	uploadIndexedKey   = "meta/uploads-indexed"
	secretPrefix       = "secret/"
	policySourcePrefix = "policysrc/"
	digestKeyPrefix    = "digestkey/"
	activationPrefix   = "activation/"
	audiencePrefix     = "audience/"
	highWaterPrefix    = "statehw/"
	segmentPrefix      = "seg/"
	layerPrefix        = "layer/"
	taskPrefix         = "task/"
	taskCanaryPrefix   = "tcanary/"
	taskRepeatPrefix   = "trepeat/"
	joinPrefix         = "join/"
	jtiPrefix          = "jti/"
)

// sealedPrefixes are the families of sealed records, which Check reads.
var sealedPrefixes = []string{principalPrefix, collabPrefix, budgetPrefix, uploadPrefix, partReceiptPrefix, secretPrefix, policySourcePrefix, digestKeyPrefix, activationPrefix}

// segmentPrefixes are the families of segments, which CheckSegments reads.
var segmentPrefixes = []string{segmentPrefix, layerPrefix, taskPrefix, taskCanaryPrefix, taskRepeatPrefix, joinPrefix, audiencePrefix}

// A Span is keys deleted together: one key, or every key under a prefix.
type Span struct {
	key   string
	exact bool
}

func keySpan(key string) Span       { return Span{key: key, exact: true} }
func prefixSpan(prefix string) Span { return Span{key: prefix} }

// Keys returns every key of the spans that txn holds, in span order.
func Keys(txn *badger.Txn, spans ...Span) ([][]byte, error) {
	var keys [][]byte
	for _, s := range spans {
		if s.exact {
			switch _, err := txn.Get([]byte(s.key)); {
			case err == nil:
				keys = append(keys, []byte(s.key))
			case err != badger.ErrKeyNotFound:
				return nil, fmt.Errorf("store: reading %s: %w", s.key, err)
			}
			continue
		}
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(s.key)})
		for it.Rewind(); it.Valid(); it.Next() {
			keys = append(keys, it.Item().KeyCopy(nil))
		}
		it.Close()
	}
	return keys, nil
}

// Parts names the keys of one object stored in numbered parts.
type Parts struct{ prefix string } // ends in "/"

// Key returns the key of part number part.
func (p Parts) Key(part int) []byte { return fmt.Appendf(nil, "%s%08d", p.prefix, part) }

// Span returns every part, and anything else kept under the object.
func (p Parts) Span() Span { return prefixSpan(p.prefix) }

// Segments are the parts of an upload, as received.
func Segments(upload string) Parts { return Parts{segmentPrefix + upload + "/"} }

// Layer holds the pairs of an upload's set once it carries layer members'
// keys (layer ≥ 2; layer 1 is the upload's segments).
func Layer(upload string, layer int) Parts {
	return Parts{fmt.Sprintf("%s%s/%d/", layerPrefix, upload, layer)}
}

// TaskParts are the parts of a relay task, offered to a member.
func TaskParts(task string) Parts { return Parts{taskPrefix + task + "/"} }

// TaskCanaries are the canary pairs found in each part a member returned.
func TaskCanaries(task string) Parts { return Parts{taskCanaryPrefix + task + "/"} }

// TaskRepeats are, for each part of a task, the other rows of the set that
// hold an element the part offers once: pairs of the offered row and
// another row, each a little-endian uint32.
func TaskRepeats(task string) Parts { return Parts{taskRepeatPrefix + task + "/"} }

// Join holds the join table of a collaboration's match run, and (under the
// same prefix, so they are deleted with it) the run's Duplicates.
func Join(collab string, run int64) Parts {
	return Parts{fmt.Sprintf("%s%s/%d/", joinPrefix, collab, run)}
}

// Joins are every join table of a collaboration, with their duplicates.
func Joins(collab string) Span { return prefixSpan(joinPrefix + collab + "/") }

// Duplicates is the key of the rows of member's list that a match run
// dropped as duplicates.
func Duplicates(collab string, run int64, member string) []byte {
	return []byte(Join(collab, run).prefix + "dups/" + member)
}

// Audience is the key of the fingerprints of the people of an audience
// activated in a collaboration, and the name its audit entry gives it; of
// an audience a guard refused, as many zeros.
func Audience(collab, id string) []byte { return []byte(audiencePrefix + collab + "/" + id) }

// CollabUpload is the key (no value) that lists upload among collab's, so
// that a collaboration's uploads are found without reading every upload's
// record.
func CollabUpload(collab, upload string) []byte {
	return []byte(collabUploadPrefix + collab + "/" + upload)
}

// CollabUploadSpan is CollabUpload's key, to delete with its upload.
func CollabUploadSpan(collab, upload string) Span {
	return keySpan(string(CollabUpload(collab, upload)))
}

// UploadsIndexed is the key (no value) that says every upload has its
// CollabUpload key: the room wrote the missing ones once.
func UploadsIndexed() []byte { return []byte(uploadIndexedKey) }

// UploadsOf returns the uploads CollabUpload lists for collab.
func UploadsOf(txn *badger.Txn, collab string) ([]string, error) {
	prefix := []byte(collabUploadPrefix + collab + "/")
	it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
	defer it.Close()
	var ups []string
	for it.Rewind(); it.Valid(); it.Next() {
		ups = append(ups, string(it.Item().Key()[len(prefix):]))
	}
	return ups, nil
}

// Audiences are the fingerprints of every audience activated, or refused,
// in a collaboration.
func Audiences(collab string) Span { return prefixSpan(audiencePrefix + collab + "/") }

// UploadData is an upload's data: the receipts of its parts, its segments
// and every layer made from them. The receipts come first: a deletion
// stopped midway (DeleteKeys) then leaves parts without receipts, which
// the member sends again, and never a receipt of a part gone.
func UploadData(upload string) []Span {
	return append(PartsReceived(upload), Segments(upload).Span(), prefixSpan(layerPrefix+upload+"/"))
}

// PartsReceived is the receipts of an upload's parts (PartReceipts), with
// their high-water marks.
func PartsReceived(upload string) []Span {
	receipts := partReceiptPrefix + upload + "/"
	return []Span{prefixSpan(receipts), prefixSpan(string(highWaterKey(receipts)))}
}

// UploadsWithData returns the ids of the uploads that have parts,
// receipts or layers stored.
func UploadsWithData(txn *badger.Txn) ([]string, error) {
	return idsUnder(txn, partReceiptPrefix, segmentPrefix, layerPrefix)
}

// LayersOf returns the numbers of the layers stored of upload's set.
func LayersOf(txn *badger.Txn, upload string) ([]int, error) {
	return numbersUnder[int](txn, layerPrefix+upload+"/")
}

// JoinRunsOf returns the numbers of the match runs of collab whose join
// tables are stored.
func JoinRunsOf(txn *badger.Txn, collab string) ([]int64, error) {
	return numbersUnder[int64](txn, joinPrefix+collab+"/")
}

// numbersUnder returns the ids found under prefix (idsUnder), each a
// decimal number, in increasing order.
func numbersUnder[N int | int64](txn *badger.Txn, prefix string) ([]N, error) {
	names, err := idsUnder(txn, prefix)
	if err != nil {
		return nil, err
	}
	numbers := make([]N, 0, len(names))
	for _, name := range names {
		n, err := strconv.ParseInt(name, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("store: %q under %s is not a number: %w", name, prefix, err)
		}
		numbers = append(numbers, N(n))
	}
	slices.Sort(numbers)
	return numbers, nil
}

// TasksWithData returns the ids of the relay tasks that have data stored.
func TasksWithData(txn *badger.Txn) ([]string, error) {
	return idsUnder(txn, taskPrefix, taskCanaryPrefix, taskRepeatPrefix)
}

// idsUnder returns the ids (the part of a key up to its next "/") found
// under the prefixes, each once, in order.
func idsUnder(txn *badger.Txn, prefixes ...string) ([]string, error) {
	seen := map[string]bool{}
	for _, p := range prefixes {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(p)})
		for it.Rewind(); it.Valid(); {
			rest := string(it.Item().Key()[len(p):])
			id, _, ok := strings.Cut(rest, "/")
			if !ok || id == "" {
				it.Next()
				continue
			}
			seen[id] = true
			// Past every key of this id: "/" + 1 is "0".
			it.Seek([]byte(p + id + "0"))
		}
		it.Close()
	}
	return slices.Sorted(maps.Keys(seen)), nil
}

// TaskData is a relay task's data: its parts, the canaries returned and the
// repeats of the elements it offers.
func TaskData(task string) []Span {
	return []Span{TaskParts(task).Span(), TaskCanaries(task).Span(), TaskRepeats(task).Span()}
}

// JTIKey is the key that records a token's jti as used by issuer. The jti
// is hashed: it is the issuer's string, of any length and content.
func JTIKey(issuer, jti string) []byte {
	sum := sha256.Sum256([]byte(jti))
	return []byte(jtiPrefix + issuer + "/" + hex.EncodeToString(sum[:]))
}
