package store

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"
)

// Records is a family of sealed records of type T, each named by an id of
// type K. The room binds each family to its record type once; the
// functions below give the family's keys.
type Records[K any, T any] struct {
	prefix string
	path   func(K) string
}

// In names a record that belongs to a collaboration.
type In struct{ Collab, ID string }

func name(id string) string { return id }
func inPath(id In) string   { return id.Collab + "/" + id.ID }

// Principals are the room's principals, by id.
func Principals[T any]() Records[string, T] { return Records[string, T]{principalPrefix, name} }

// Collabs are the collaborations, by id.
func Collabs[T any]() Records[string, T] { return Records[string, T]{collabPrefix, name} }

// Budgets are the collaborations' privacy ledgers, by collaboration.
func Budgets[T any]() Records[string, T] { return Records[string, T]{budgetPrefix, name} }

// Uploads are uploads in progress or committed, by upload id.
func Uploads[T any]() Records[string, T] { return Records[string, T]{uploadPrefix, name} }

// PartOf names a part of an upload.
type PartOf struct {
	Upload string
	Part   int
}

func partPath(p PartOf) string { return fmt.Sprintf("%s/%08d", p.Upload, p.Part) }

// PartReceipts are the receipts of an upload's parts, one record a part,
// written in the part's audit entry: an upload's record does not grow with
// the parts it receives.
func PartReceipts[T any]() Records[PartOf, T] { return Records[PartOf, T]{partReceiptPrefix, partPath} }

// ScanParts calls fn with the record of every part of upload in f, in part
// order, until fn returns an error.
func ScanParts[T any](t Txn, f Records[PartOf, T], upload string, fn func(*T) error) error {
	return f.scan(t, f.prefix+upload+"/", fn)
}

// Secrets are collaboration secrets sealed to members: In{collab, member}.
func Secrets[T any]() Records[In, T] { return Records[In, T]{secretPrefix, inPath} }

// PolicySources are proposed modules' sources: In{collab, module hash}.
func PolicySources[T any]() Records[In, T] { return Records[In, T]{policySourcePrefix, inPath} }

// Activations are the collaborations' activation ledgers, by collaboration.
func Activations[T any]() Records[string, T] { return Records[string, T]{activationPrefix, name} }

// Key returns the key of record id (for audit references and messages).
func (f Records[K, T]) Key(id K) string { return f.prefix + f.path(id) }

// Get reads record id; ErrNotFound if there is none.
func (f Records[K, T]) Get(t Txn, id K) (*T, error) {
	v := new(T)
	if err := t.get(f.Key(id), v); err != nil {
		return nil, err
	}
	return v, nil
}

// Exists reports whether record id is stored, without opening it.
func (f Records[K, T]) Exists(t Txn, id K) (bool, error) {
	switch _, err := t.Get([]byte(f.Key(id))); {
	case err == nil:
		return true, nil
	case errors.Is(err, badger.ErrKeyNotFound):
		return false, nil
	default:
		return false, fmt.Errorf("store: reading %s: %w", f.Key(id), err)
	}
}

// Put writes v as record id, sealed to tx's audit entry.
func (f Records[K, T]) Put(tx *Tx, id K, v *T) error { return tx.put(f.Key(id), v) }

// Delete deletes record id and its high-water mark.
func (f Records[K, T]) Delete(tx *Tx, id K) error { return tx.del(f.Key(id)) }

// Span is record id with its high-water mark, for deleting it outside an
// entry's transaction.
func (f Records[K, T]) Span(id K) []Span {
	key := f.Key(id)
	return []Span{keySpan(key), keySpan(string(highWaterKey(key)))}
}

// Scan calls fn with every record of the family, in key order, until fn
// returns an error.
func (f Records[K, T]) Scan(t Txn, fn func(*T) error) error { return f.scan(t, f.prefix, fn) }

func (f Records[K, T]) scan(t Txn, prefix string, fn func(*T) error) error {
	it := t.NewIterator(badger.IteratorOptions{Prefix: []byte(prefix), PrefetchValues: true})
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		v := new(T)
		key := string(it.Item().Key())
		if err := it.Item().Value(func(b []byte) error { return t.Sealer.decode(key, b, v) }); err != nil {
			return err
		}
		if err := fn(v); err != nil {
			return err
		}
	}
	return nil
}

// Unbound is a family of records written once, outside any audit entry
// (digest keys): sealed with index -1, their MAC alone checked.
type Unbound struct{ prefix string }

// DigestKeys are the collaborations' result-digest keys, by collaboration.
func DigestKeys() Unbound { return Unbound{digestKeyPrefix} }

// Key returns the key of record id.
func (f Unbound) Key(id string) string { return f.prefix + id }

// Get returns record id's body; ErrNotFound if there is none.
func (f Unbound) Get(t Txn, id string) ([]byte, error) {
	key := f.Key(id)
	it, err := t.Get([]byte(key))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("store: reading %s: %w", key, err)
	}
	var out []byte
	err = it.Value(func(b []byte) error {
		rec, err := t.Sealer.Open(key, b)
		if err == nil && rec.Index != -1 {
			err = fmt.Errorf("%w: %s claims an audit entry it was never written with", ErrCorruptState, key)
		}
		out = bytes.Clone(rec.Body)
		return err
	})
	return out, err
}

// Put writes body as record id.
func (f Unbound) Put(t Txn, id string, body []byte) error {
	key := f.Key(id)
	return t.Set([]byte(key), t.Sealer.Seal(key, -1, [32]byte{}, body))
}
