package store

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"sync"

	"github.com/dgraph-io/badger/v4"
)

// Cache keeps records of one family decoded, each beside the sealed bytes
// it was decoded from, for the records every request reads (the caller's
// principal, the collaboration it asks about, its ledger). A read through
// the cache still reads the stored value in its own transaction, so a
// record changed, deleted or damaged since is never missed: the value is
// decoded again unless its bytes equal the cached ones, which passed the
// same seal check and decode to the same record. What it saves is the
// MAC and the JSON decoding of a record that did not change.
//
// A record read through the cache is shared by every reader of that
// version: it must not be modified. A reader that changes a record reads
// it with Get (or inside the transaction that writes it), never here.
type Cache[T any] struct {
	max   int
	check bool

	mu sync.RWMutex
	m  map[string]cached[T]
}

type cached[T any] struct {
	sealed []byte // the stored value the record was decoded from
	v      *T
}

// NewCache returns a cache of at most max records (it is emptied when
// full: a room reads far fewer records often than that). With check, every
// read that finds its record cached also decodes the stored value and
// panics if the cached record no longer equals it: a reader modified a
// shared record. Tests turn it on; it costs what the cache saves.
func NewCache[T any](max int, check bool) *Cache[T] {
	return &Cache[T]{max: max, check: check, m: map[string]cached[T]{}}
}

// GetShared reads record id through c; ErrNotFound if there is none. The
// record it returns is shared (see Cache): it must not be modified.
func (f Records[K, T]) GetShared(t Txn, c *Cache[T], id K) (*T, error) {
	key := f.Key(id)
	item, err := t.Get([]byte(key))
	if errors.Is(err, badger.ErrKeyNotFound) {
		c.drop(key)
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("store: reading %s: %w", key, err)
	}
	var out *T
	err = item.Value(func(b []byte) error {
		if v := c.lookup(key, b); v != nil {
			if c.check {
				c.mustEqual(t, key, b, v)
			}
			out = v
			return nil
		}
		v := new(T)
		if err := t.Sealer.decode(key, b, v); err != nil {
			c.drop(key)
			return err
		}
		c.store(key, cached[T]{sealed: bytes.Clone(b), v: v})
		out = v
		return nil
	})
	return out, err
}

// lookup returns the record cached for key if it was decoded from sealed.
func (c *Cache[T]) lookup(key string, sealed []byte) *T {
	c.mu.RLock()
	e, ok := c.m[key]
	c.mu.RUnlock()
	if !ok || !bytes.Equal(e.sealed, sealed) {
		return nil
	}
	return e.v
}

func (c *Cache[T]) store(key string, e cached[T]) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[key]; !ok && len(c.m) >= c.max {
		clear(c.m)
	}
	c.m[key] = e
}

func (c *Cache[T]) drop(key string) {
	c.mu.Lock()
	delete(c.m, key)
	c.mu.Unlock()
}

// mustEqual panics if v, cached for key, differs from the record sealed
// decodes to.
func (c *Cache[T]) mustEqual(t Txn, key string, sealed []byte, v *T) {
	fresh := new(T)
	if err := t.Sealer.decode(key, sealed, fresh); err != nil {
		panic(fmt.Sprintf("store: cached record %s: %v", key, err))
	}
	if !reflect.DeepEqual(fresh, v) {
		panic(fmt.Sprintf("store: the cached record %s was modified by a reader", key))
	}
}
