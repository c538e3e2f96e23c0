package audit

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"

	"github.com/dgraph-io/badger/v4"

	"github.com/opencleanroom/cleanroom/audit/bundle"
)

// Request keys. An entry holds the request id it was appended with as
// bundle.RequestDigest of the request's token under its principal's
// request key (bundle.RequestToken): the room gives
// a principal its own key, so that it finds its requests in a bundle (a
// client its export's entry, CheckFresh), while the auditors who read the
// entry, another member's among them, cannot test a guess of an id a
// caller chose (a customer's address, say). A principal's key is
// HMAC-SHA256 under the log's request secret of
// "cleanroom.dev/request-key/v1" and its id, each followed by a zero
// byte, as bundle's labels are; the secret is 32 random bytes
// the log makes when it is first opened for writing and keeps in its
// store, so keys outlive restarts and need no record per principal.

var keyRequestSecret = []byte("audit/request-secret")

// ErrNoRequestKey means the log has no request secret: a store written
// before request ids were keyed, opened read-only.
var ErrNoRequestKey = errors.New("audit: the log has no request secret")

// loadRequestSecret reads the log's request secret, making and storing it
// if the store has none and create is set.
func (l *Log) loadRequestSecret(create bool) error {
	run := l.db.View
	if create {
		run = l.db.Update
	}
	err := run(func(txn *badger.Txn) error {
		it, err := txn.Get(keyRequestSecret)
		if err == nil {
			l.requestSecret, err = it.ValueCopy(nil)
			return err
		}
		if !errors.Is(err, badger.ErrKeyNotFound) || !create {
			return err
		}
		secret := make([]byte, bundle.RequestKeySize)
		if _, err := io.ReadFull(rand.Reader, secret); err != nil {
			return err
		}
		l.requestSecret = secret
		return txn.Set(keyRequestSecret, secret)
	})
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("audit: reading the request secret: %w", err)
	}
	if l.requestSecret != nil && len(l.requestSecret) != bundle.RequestKeySize {
		return fmt.Errorf("%w: the request secret has %d bytes", ErrCorrupt, len(l.requestSecret))
	}
	return nil
}

// RequestKey returns principal's request key, which keys the digests of
// the request ids of principal's entries (bundle.RequestToken). Whoever
// holds it finds principal's entries by request id, and can test guesses
// of the ids: the room gives it to principal alone.
func (l *Log) RequestKey(principal string) ([]byte, error) {
	if l.requestSecret == nil {
		return nil, ErrNoRequestKey
	}
	return requestKey(l.requestSecret, principal), nil
}

func requestKey(secret []byte, principal string) []byte {
	h := hmac.New(sha256.New, secret)
	io.WriteString(h, "cleanroom.dev/request-key/v1\x00")
	io.WriteString(h, principal)
	h.Write([]byte{0})
	return h.Sum(nil)
}
