package audit

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/opencleanroom/cleanroom/audit/bundle"
)

// Errors callers branch on.
var (
	// ErrClosed: the log was closed; the action must not proceed.
	ErrClosed = errors.New("audit log closed")
	// ErrCorrupt: the stored log does not match its own signed checkpoint
	// (rolled back, truncated or edited). The room must not start on it;
	// export it and verify it to see where.
	ErrCorrupt = errors.New("audit log does not match its signed checkpoint")
	// ErrReadOnly: the log was opened read-only (for export).
	ErrReadOnly = errors.New("audit log opened read-only")
	// ErrStopped: a commit failed in the store after the store may have
	// applied it (Badger applies a batch to its memtable before it syncs
	// the write-ahead log, so a failed sync leaves the batch readable and
	// perhaps durable). The log cannot know its own size any more, so it
	// takes no more appends; reopening it reads what the store kept.
	ErrStopped = errors.New("audit log stopped after a commit of unknown outcome; reopen it")
)

// Options configure a Log. Origin and Key are required unless ReadOnly.
type Options struct {
	// Origin names the log in its checkpoints (C2SP tlog-checkpoint), e.g.
	// "cleanroom.example.com/room/1f3a". It is fixed when the log is made.
	Origin string
	// Key signs checkpoints (Ed25519).
	Key ed25519.PrivateKey
	// ReadOnly opens the log for reading and export only.
	ReadOnly bool
	// CheckpointEvery signs a checkpoint after this many new entries
	// (default 1000); CheckpointInterval after this long if there are any
	// (default 10 s). Negative disables the trigger.
	CheckpointEvery    int64
	CheckpointInterval time.Duration
	// GCInterval is how often Badger's value log is garbage-collected when
	// the log owns its database (default 10 min).
	GCInterval time.Duration
	// Anchor, if set, is a file outside the database where every signed
	// checkpoint is also written, and against which the log is checked at
	// open, so a database rolled back to an older state is refused
	// (ErrRolledBack; see anchor.go).
	Anchor string
	Logger *slog.Logger
}

// Receipt acknowledges a durable append.
type Receipt struct {
	Index    int64     // the entry's index: dense, 0, 1, 2, ...
	LeafHash tlog.Hash // RFC 6962 leaf hash of the canonical entry
	TreeSize int64     // the tree size after the commit that included it
}

// Log is an append-only Merkle log of audit entries on Badger. It is safe
// for concurrent use. Appends from many goroutines are group-committed by one
// writer: one Badger transaction, and one fsync, per batch.
type Log struct {
	db       *badger.DB
	ownDB    bool
	tmpDir   string // a recovered copy of the store (OpenForExport), removed on Close
	opts     Options
	signer   note.Signer
	verifier note.Verifier
	log      *slog.Logger

	reqs     chan *appendReq
	closeMu  sync.RWMutex // held for reading while sending on reqs
	closed   bool
	closeErr error
	stop     chan struct{}
	wg       sync.WaitGroup
	once     sync.Once
	kick     chan struct{}

	size     atomic.Int64 // committed entries
	commits  atomic.Int64 // successful group commits
	ckptMu   sync.Mutex   // serializes signing
	lastCkpt atomic.Int64 // size of the latest checkpoint

	stopped atomic.Pointer[error] // why the log stopped (ErrStopped), nil while it runs

	requestSecret []byte // keys the request ids of entries (requestkey.go); nil if none

	// beforeCommit, when set by tests, runs before each batch commits; an
	// error fails the batch as a failing disk would. commitStore, when set
	// by tests, commits a batch's transaction in place of txn.Commit.
	beforeCommit func() error
	commitStore  func(txn *badger.Txn) error
	// drawSalt, when set by tests, draws each entry's salt in place of
	// crypto/rand: a fuzz target's workers each make the same log.
	drawSalt func(salt []byte)
}

type appendReq struct {
	entry []byte
	leaf  tlog.Hash // RFC 6962 leaf hash of entry, computed by the appender
	scope []byte    // its key in the scope index (see index.go)
	fn    TxFunc
	done  chan appendRes
}

type appendRes struct {
	r   Receipt
	err error
}

// Open opens (creating if needed) a log in its own Badger database in dir.
func Open(ctx context.Context, dir string, opts Options) (*Log, error) {
	bo := badger.DefaultOptions(dir).
		WithSyncWrites(true).
		WithReadOnly(opts.ReadOnly).
		WithLogger(badgerLogger{logger(opts)}).
		WithMemTableSize(16 << 20).
		WithBlockCacheSize(16 << 20)
	db, err := badger.Open(bo)
	if err != nil {
		return nil, fmt.Errorf("audit: opening store: %w", err)
	}
	l, err := New(ctx, db, opts)
	if err != nil {
		db.Close()
		return nil, err
	}
	l.ownDB = true
	if !opts.ReadOnly {
		l.wg.Add(1)
		go l.gcLoop()
	}
	return l, nil
}

// New opens a log kept in db, under keys prefixed "audit/", so the room can
// keep it in the same database as the data it describes and write both in
// one transaction (see AppendTx). The caller closes db after the Log.
func New(ctx context.Context, db *badger.DB, opts Options) (*Log, error) {
	if opts.CheckpointEvery == 0 {
		opts.CheckpointEvery = 1000
	}
	if opts.CheckpointInterval == 0 {
		opts.CheckpointInterval = 10 * time.Second
	}
	if opts.GCInterval == 0 {
		opts.GCInterval = 10 * time.Minute
	}
	l := &Log{db: db, opts: opts, log: logger(opts), stop: make(chan struct{}), kick: make(chan struct{}, 1)}
	size, origin, last, err := l.readMeta()
	if err != nil {
		return nil, err
	}
	l.size.Store(size)
	l.lastCkpt.Store(last)
	if opts.ReadOnly {
		if origin == "" && size > 0 {
			return nil, fmt.Errorf("audit: store has entries but no origin")
		}
		l.opts.Origin = origin
		if err := l.loadRequestSecret(false); err != nil {
			return nil, err
		}
		if err := l.checkAnchor(ctx); err != nil {
			return nil, err
		}
		return l, nil
	}
	if err := l.openForWriting(ctx, origin); err != nil {
		return nil, err
	}
	return l, nil
}

// openForWriting checks that the store is this log's (its origin, its
// checkpoints, its anchor), completes its scope index, and starts the
// writer and the checkpointer. origin is the store's, "" for a new one.
func (l *Log) openForWriting(ctx context.Context, origin string) error {
	opts := l.opts
	if opts.Origin == "" || len(opts.Key) != ed25519.PrivateKeySize {
		return errors.New("audit: Origin and an Ed25519 Key are required to write")
	}
	if origin != "" && origin != opts.Origin {
		return fmt.Errorf("audit: store belongs to origin %q, not %q", origin, opts.Origin)
	}
	var err error
	if l.signer, l.verifier, err = newNoteKeys(opts.Origin, opts.Key); err != nil {
		return err
	}
	if origin == "" {
		if err := l.db.Update(func(txn *badger.Txn) error { return txn.Set(keyOrigin, []byte(opts.Origin)) }); err != nil {
			return fmt.Errorf("audit: writing origin: %w", err)
		}
	}
	if err := l.loadRequestSecret(true); err != nil {
		return err
	}
	if err := l.checkAgainstCheckpoint(ctx); err != nil {
		return err
	}
	if err := l.checkAnchor(ctx); err != nil {
		return err
	}
	if err := l.completeIndex(ctx); err != nil {
		return err
	}
	var f frontier
	err = l.db.View(func(txn *badger.Txn) (err error) { f, err = loadFrontier(txn, l.size.Load()); return err })
	if err != nil {
		return err
	}
	l.reqs = make(chan *appendReq, 4*maxBatch)
	l.wg.Add(2)
	go l.writer(f)
	go l.checkpointLoop()
	return nil
}

func logger(o Options) *slog.Logger {
	if o.Logger != nil {
		return o.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// Storage layout, all under "audit/": the tree size, each entry by index,
// each RFC 6962 stored hash by tlog's storage index, and every signed
// checkpoint by its tree size; the request secret (requestkey.go). Indices are big-endian so keys sort in order.
var (
	keySize     = []byte("audit/size")
	keyOrigin   = []byte("audit/origin")
	keyLastCkpt = []byte("audit/last-checkpoint")
	prefixEntry = "audit/e/"
	prefixHash  = "audit/h/"
	prefixCkpt  = "audit/c/"
)

func indexKey(prefix string, i int64) []byte {
	return binary.BigEndian.AppendUint64([]byte(prefix), uint64(i))
}

func u64(b []byte) int64 {
	if len(b) != 8 {
		return -1
	}
	return int64(binary.BigEndian.Uint64(b))
}

func (l *Log) readMeta() (size int64, origin string, last int64, err error) {
	err = l.db.View(func(txn *badger.Txn) error {
		get := func(k []byte) ([]byte, error) {
			it, err := txn.Get(k)
			if errors.Is(err, badger.ErrKeyNotFound) {
				return nil, nil
			}
			if err != nil {
				return nil, err
			}
			return it.ValueCopy(nil)
		}
		b, err := get(keySize)
		if err != nil {
			return err
		}
		if b != nil {
			if size = u64(b); size < 0 {
				return fmt.Errorf("%w: malformed size", ErrCorrupt)
			}
		}
		o, err := get(keyOrigin)
		if err != nil {
			return err
		}
		origin = string(o)
		c, err := get(keyLastCkpt)
		if err != nil {
			return err
		}
		if c != nil {
			last = u64(c)
		}
		return nil
	})
	if err != nil {
		err = fmt.Errorf("audit: reading log state: %w", err)
	}
	return size, origin, last, err
}

// Size returns the number of committed entries.
func (l *Log) Size() int64 { return l.size.Load() }

// Commits returns how many group commits (transactions, and fsyncs) the log
// has made since it was opened: Size over Commits is the mean batch.
func (l *Log) Commits() int64 { return l.commits.Load() }

// Origin returns the log's checkpoint origin.
func (l *Log) Origin() string { return l.opts.Origin }

// Append validates e, writes it durably with its Merkle hashes, and returns
// its receipt. If Append returns an error the entry is not in the log and the
// action it describes must not proceed (fail closed). Once Append has queued
// the entry it waits for the commit even if ctx ends, so that a receipt is
// never lost for an entry that was written.
func (l *Log) Append(ctx context.Context, e Entry) (Receipt, error) {
	return l.AppendTx(ctx, e, nil)
}

// AppendTx is Append with fn run inside the transaction that writes the
// entry, so a state change (a privacy-budget debit, say) and its audit entry
// commit together or not at all. fn runs on the log's single writer, so it
// sees no concurrent AppendTx: it sees the stored state with the changes of
// the entries appended before it. If fn returns an error, the entry is not
// appended, nothing fn wrote is kept (the log discards the transaction and
// writes the rest of its batch again without it), and AppendTx returns that
// error.
//
// So fn may run more than once, on a fresh transaction each time: it must
// depend only on what it reads through txn, and it must set anything it
// hands to its caller (through variables it captures) on every run.
func (l *Log) AppendTx(ctx context.Context, e Entry, fn func(txn *badger.Txn) error) (Receipt, error) {
	var at TxFunc
	if fn != nil {
		at = func(txn *badger.Txn, _ int64, _ tlog.Hash) error { return fn(txn) }
	}
	return l.AppendTxAt(ctx, e, at)
}

// TxFunc is a state change committed with an audit entry: it runs in the
// entry's transaction and learns the index and leaf hash the entry will
// have, so that what it writes can be bound to the entry that records it.
// It may run more than once, as AppendTx says.
type TxFunc func(txn *badger.Txn, index int64, leaf tlog.Hash) error

// AppendTxAt is AppendTx with fn told the entry's index and leaf hash.
func (l *Log) AppendTxAt(ctx context.Context, e Entry, fn TxFunc) (Receipt, error) {
	if l.opts.ReadOnly {
		return Receipt{}, ErrReadOnly
	}
	// Every entry gets a fresh salt of the log's, whatever the caller set:
	// its leaf hash is then no test of a guess (Entry.Salt).
	var salt [bundle.SaltSize / 2]byte
	if l.drawSalt != nil {
		l.drawSalt(salt[:])
	} else {
		rand.Read(salt[:])
	}
	e.Salt = hex.EncodeToString(salt[:])
	// The request's id may be the caller's text: the entry keeps its
	// digest under the principal's request key (Entry.RequestID).
	if e.RequestID != "" {
		key, err := l.RequestKey(e.Principal)
		if err != nil {
			return Receipt{}, err
		}
		e.RequestID = bundle.RequestDigest(bundle.RequestToken(key, e.Principal, e.RequestID), e.Salt)
	}
	b, err := e.MarshalCanonical()
	if err != nil {
		return Receipt{}, err
	}
	if err := ctx.Err(); err != nil {
		return Receipt{}, err
	}
	if err := l.Err(); err != nil {
		return Receipt{}, err
	}
	// The appender hashes its own entry: the writer's work is what every
	// appender of a batch waits for, one after another.
	req := &appendReq{entry: b, leaf: tlog.RecordHash(b), scope: scopeKeyPrefix(e.Collaboration, e.Principal), fn: fn, done: make(chan appendRes, 1)}
	l.closeMu.RLock()
	if l.closed {
		l.closeMu.RUnlock()
		return Receipt{}, ErrClosed
	}
	select {
	case l.reqs <- req:
	case <-ctx.Done():
		l.closeMu.RUnlock()
		return Receipt{}, ctx.Err()
	}
	l.closeMu.RUnlock()
	res := <-req.done
	return res.r, res.err
}

func (l *Log) gcLoop() {
	defer l.wg.Done()
	t := time.NewTicker(l.opts.GCInterval)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
			for l.db.RunValueLogGC(0.5) == nil {
				// Rewrote a file; try again until Badger says there is
				// nothing worth collecting.
			}
		}
	}
}

// Close stops the background work, finishes queued appends and, when the log
// opened its own database, closes it. It is safe to call more than once.
func (l *Log) Close() error {
	l.once.Do(func() {
		l.closeMu.Lock()
		l.closed = true
		l.closeMu.Unlock()
		close(l.stop)
		if l.reqs != nil {
			close(l.reqs) // the writer drains what was queued, then exits
		}
		l.wg.Wait()
		if !l.opts.ReadOnly && l.size.Load() != l.lastCkpt.Load() {
			// A stopped room's log ends on a signed checkpoint, so an
			// export of its data directory covers every entry.
			if _, err := l.Checkpoint(context.Background()); err != nil {
				l.log.Error("audit: final checkpoint failed", "err", err)
			}
		}
		if l.ownDB {
			l.closeErr = l.db.Close()
		}
		if l.tmpDir != "" {
			if err := os.RemoveAll(l.tmpDir); err != nil && l.closeErr == nil {
				l.closeErr = err
			}
		}
	})
	return l.closeErr
}

// badgerLogger sends Badger's warnings and errors to slog and drops its
// chatter.
type badgerLogger struct{ l *slog.Logger }

func (b badgerLogger) Errorf(f string, a ...any)   { b.l.Error("badger: " + fmt.Sprintf(f, a...)) }
func (b badgerLogger) Warningf(f string, a ...any) { b.l.Warn("badger: " + fmt.Sprintf(f, a...)) }
func (b badgerLogger) Infof(string, ...any)        {}
func (b badgerLogger) Debugf(string, ...any)       {}
