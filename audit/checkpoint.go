package audit

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// newNoteKeys makes the signed-note signer and verifier for origin from an
// Ed25519 key. x/mod's note package builds signers only from its text key
// format, so we write the key in that format (name+hash+key) rather than
// reimplement its key hash.
func newNoteKeys(origin string, key ed25519.PrivateKey) (note.Signer, note.Verifier, error) {
	vkey, err := note.NewEd25519VerifierKey(origin, key.Public().(ed25519.PublicKey))
	if err != nil {
		return nil, nil, fmt.Errorf("audit: origin %q cannot name a signed note: %w", origin, err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return nil, nil, err
	}
	name, rest, _ := strings.Cut(vkey, "+")
	hash, _, _ := strings.Cut(rest, "+")
	skey := "PRIVATE+KEY+" + name + "+" + hash + "+" +
		base64.StdEncoding.EncodeToString(append([]byte{1}, key.Seed()...))
	s, err := note.NewSigner(skey)
	if err != nil {
		return nil, nil, err
	}
	return s, v, nil
}

// PublicJWKS returns the room's checkpoint key as a JWK set (use "sig", alg
// EdDSA, kid the RFC 7638 thumbprint), for /.well-known/jwks.json.
func PublicJWKS(pub ed25519.PublicKey) (jwk.Set, error) {
	k, err := jwk.FromRaw(pub)
	if err != nil {
		return nil, err
	}
	if err := jwk.AssignKeyID(k); err != nil {
		return nil, err
	}
	if err := k.Set(jwk.KeyUsageKey, jwk.ForSignature); err != nil {
		return nil, err
	}
	if err := k.Set(jwk.AlgorithmKey, jwa.EdDSA); err != nil {
		return nil, err
	}
	set := jwk.NewSet()
	set.AddKey(k)
	return set, nil
}

func (l *Log) sign(size int64, root tlog.Hash) ([]byte, error) {
	text := fmt.Sprintf("%s\n%d\n%s\n", l.opts.Origin, size, base64.StdEncoding.EncodeToString(root[:]))
	return note.Sign(&note.Note{Text: text}, l.signer)
}

// Checkpoint signs and stores a checkpoint of the log as it is now and
// returns it. With no new entries since the latest, it returns the latest.
func (l *Log) Checkpoint(ctx context.Context) (*Checkpoint, error) {
	if l.opts.ReadOnly {
		return nil, ErrReadOnly
	}
	l.ckptMu.Lock()
	defer l.ckptMu.Unlock()
	size := l.size.Load()
	if size == l.lastCkpt.Load() && size > 0 {
		return l.LatestCheckpoint(ctx)
	}
	var root tlog.Hash
	err := l.db.View(func(txn *badger.Txn) error {
		var err error
		root, err = tlog.TreeHash(size, txnHashReader{txn})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("audit: tree hash: %w", err)
	}
	signed, err := l.sign(size, root)
	if err != nil {
		return nil, fmt.Errorf("audit: signing checkpoint: %w", err)
	}
	err = l.db.Update(func(txn *badger.Txn) error {
		if err := txn.Set(indexKey(prefixCkpt, size), signed); err != nil {
			return err
		}
		return txn.Set(keyLastCkpt, indexKey("", size))
	})
	if err != nil {
		return nil, fmt.Errorf("audit: storing checkpoint: %w", err)
	}
	l.lastCkpt.Store(size)
	if err := l.writeAnchor(signed); err != nil {
		return nil, err
	}
	return &Checkpoint{Origin: l.opts.Origin, Size: size, Root: root, Note: signed}, nil
}

// LatestCheckpoint returns the latest stored checkpoint, or nil if none.
// It does not verify the signature; ParseCheckpoint does.
func (l *Log) LatestCheckpoint(ctx context.Context) (*Checkpoint, error) {
	var c *Checkpoint
	err := l.db.View(func(txn *badger.Txn) error {
		var err error
		c, err = readCheckpoint(txn, l.lastCkpt.Load())
		return err
	})
	return c, err
}

// Checkpoints returns every stored checkpoint, oldest first.
func (l *Log) Checkpoints(ctx context.Context) ([]*Checkpoint, error) {
	var out []*Checkpoint
	err := l.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(prefixCkpt)})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			if err := ctx.Err(); err != nil {
				return err
			}
			signed, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			c, err := parseUnverified(signed)
			if err != nil {
				return err
			}
			out = append(out, c)
		}
		return nil
	})
	return out, err
}

func readCheckpoint(txn *badger.Txn, size int64) (*Checkpoint, error) {
	it, err := txn.Get(indexKey(prefixCkpt, size))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	signed, err := it.ValueCopy(nil)
	if err != nil {
		return nil, err
	}
	return parseUnverified(signed)
}

// checkAgainstCheckpoint refuses a store whose entries no longer hash to its
// latest signed checkpoint, or that is smaller than it: a log that was
// truncated, rolled back or edited must not take new entries as if nothing
// happened.
func (l *Log) checkAgainstCheckpoint(ctx context.Context) error {
	c, err := l.LatestCheckpoint(ctx)
	if err != nil {
		return fmt.Errorf("audit: reading checkpoint: %w", err)
	}
	if c == nil {
		return nil
	}
	if _, err := ParseCheckpoint(c.Note, l.verifier); err != nil {
		return fmt.Errorf("%w: latest checkpoint: %v", ErrCorrupt, err)
	}
	if c.Size > l.size.Load() {
		return fmt.Errorf("%w: log has %d entries, its checkpoint says %d", ErrCorrupt, l.size.Load(), c.Size)
	}
	var root tlog.Hash
	err = l.db.View(func(txn *badger.Txn) error {
		root, err = tlog.TreeHash(c.Size, txnHashReader{txn})
		return err
	})
	if err != nil || root != c.Root {
		return fmt.Errorf("%w: tree hash at size %d differs", ErrCorrupt, c.Size)
	}
	return nil
}

func (l *Log) checkpointLoop() {
	defer l.wg.Done()
	var tick <-chan time.Time
	if l.opts.CheckpointInterval > 0 {
		t := time.NewTicker(l.opts.CheckpointInterval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-l.stop:
			return
		case <-l.kick:
		case <-tick:
		}
		if l.size.Load() == l.lastCkpt.Load() {
			continue
		}
		if _, err := l.Checkpoint(context.Background()); err != nil {
			l.log.Error("audit checkpoint failed", "err", err)
		}
	}
}

// ErrNotOwnCheckpoint is a checkpoint a reader sent that this log did not
// sign.
var ErrNotOwnCheckpoint = errors.New("audit: not a checkpoint this log signed")

// ReaderCheckpoint parses signed, a checkpoint a reader holds and names to
// an export (Scope.Extends, Export's extends): it must be one this log
// signed, for its origin. A log opened without its key (a stopped room's,
// read for export) takes it unverified: the reader's verifier checks it.
//
// The bundle carries it back as sent, so it must be exactly what the log
// signs: one signature, the log's. A signed note may carry more signature
// lines, of keys its reader does not know, whose names and bytes are any
// text; the log would send them back in a header the reader takes for the
// log's.
func (l *Log) ReaderCheckpoint(signed []byte) (*Checkpoint, error) {
	var c *Checkpoint
	var err error
	if l.verifier != nil {
		var n *note.Note
		if n, err = note.Open(signed, note.VerifierList(l.verifier)); err == nil && !isOwnNote(n, signed) {
			return nil, ErrNotOwnCheckpoint
		}
		if err == nil {
			c, err = ParseCheckpoint(signed, l.verifier)
		}
	} else {
		c, err = parseUnverified(signed)
	}
	if err != nil || c.Origin != l.Origin() {
		return nil, ErrNotOwnCheckpoint
	}
	return c, nil
}

// isOwnNote reports whether signed, which note.Open read as n, is exactly
// the note the log writes: its text and one signature line, the log's,
// in canonical base64. note.Open keeps unknown keys' signature lines and
// drops a known key's repeated ones before it checks them, and base64
// leaves a few bits of a line's last character free: any of those would
// be the reader's bytes, sent back under the log's name.
func isOwnNote(n *note.Note, signed []byte) bool {
	if len(n.Sigs) != 1 || len(n.UnverifiedSigs) != 0 {
		return false
	}
	sig, err := base64.StdEncoding.Strict().DecodeString(n.Sigs[0].Base64)
	if err != nil {
		return false
	}
	want := n.Text + "\n\u2014 " + n.Sigs[0].Name + " " + base64.StdEncoding.EncodeToString(sig) + "\n"
	return string(signed) == want
}
