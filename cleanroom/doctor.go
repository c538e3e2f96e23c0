package cleanroom

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/dgraph-io/badger/v4"
	"golang.org/x/mod/sumdb/note"

	"github.com/opencleanroom/cleanroom/audit"
	"github.com/opencleanroom/cleanroom/cleanroom/internal/store"
)

// Finding is something wrong with a room's data directory, and what to do.
type Finding struct {
	Check   string `json:"check"`
	Problem string `json:"problem"`
	Advice  string `json:"advice"`
}

// Diagnosis is what Diagnose found: the checks it ran and what failed.
type Diagnosis struct {
	Checks   []string  `json:"checks"`
	Findings []Finding `json:"findings"`
	// Recovered tells that the database was not closed cleanly and was
	// checked through a recovered copy (the room recovers it on start).
	Recovered bool `json:"recovered,omitempty"`
}

// Healthy reports whether every check passed.
func (d *Diagnosis) Healthy() bool { return len(d.Findings) == 0 }

// Advice the findings give.
const (
	adviceRestore = "keep this directory as evidence (cleanroom audit export --data DIR saves the audit log), and restore the data directory from a backup"
	adviceNoRoom  = "pass the directory given to cleanroom serve --data"
)

// Diagnose checks a stopped room's data directory without changing it:
// its identity; that the database opens; every table against its
// checksums; the audit log against its signed checkpoints and anchor,
// entry by entry; every state record against the log; each
// collaboration's ledger against the charges its log records; and every
// stored segment against its checksum. A database left by a crash is
// checked through a recovered copy.
func Diagnose(ctx context.Context, dir DataDir) (*Diagnosis, error) {
	d := &Diagnosis{}
	find := func(check, problem, advice string) { d.Findings = append(d.Findings, Finding{check, problem, advice}) }
	ran := func(check string) { d.Checks = append(d.Checks, check) }

	ran("identity")
	id, err := readIdentity(dir)
	if err != nil {
		find("identity", err.Error(), adviceNoRoom)
		return d, nil
	}
	ran("database")
	db, cleanup, err := openForDiagnosis(dir)
	if err != nil {
		find("database", err.Error(), adviceRestore)
		return d, nil
	}
	defer cleanup.close()
	d.Recovered = cleanup.recovered
	ran("tables")
	if err := verifyTables(db); err != nil {
		find("tables", err.Error(), adviceRestore)
	}
	ran("audit log")
	log, err := audit.New(ctx, db, audit.Options{ReadOnly: true, Anchor: dir.AnchorFile()})
	if err != nil {
		find("audit log", err.Error(), adviceRestore)
		return d, nil
	}
	defer log.Close()
	if err := verifyLog(ctx, log, id); err != nil {
		find("audit log", err.Error(), adviceRestore)
	}
	stateKey, err := stateKeyFrom(id.key.Seed())
	if err != nil {
		return nil, err
	}
	r := &Room{db: db, audit: log, stateKey: stateKey, sealer: store.NewSealer(stateKey)}
	ran("state")
	problems, err := r.checkState()
	if err != nil {
		find("state", err.Error(), adviceRestore)
	}
	for _, p := range problems {
		find("state", p.Key+" "+p.Reason, "the room's state disagrees with its audit log: "+adviceRestore)
	}
	ran("ledger")
	for _, f := range r.reconcileLedgers(ctx) {
		find("ledger", f, "the ledger disagrees with the charges its audit log records: "+adviceRestore)
	}
	ran("segments")
	if err := db.View(store.NewFiles(dir.Segments(), db).CheckSegments); err != nil {
		find("segments", err.Error(), adviceRestore)
	}
	return d, nil
}

// diagnosisCleanup closes what openForDiagnosis opened.
type diagnosisCleanup struct {
	close     func()
	recovered bool
}

// openForDiagnosis opens the database read-only; one that a crash left
// needing recovery is copied and the copy opened, never the original.
func openForDiagnosis(dir DataDir) (*badger.DB, *diagnosisCleanup, error) {
	db, err := openDatabase(dir.Database(), true)
	if err == nil {
		return db, &diagnosisCleanup{close: func() { db.Close() }}, nil
	}
	if !strings.Contains(err.Error(), badger.ErrTruncateNeeded.Error()) {
		return nil, nil, err
	}
	tmp, terr := os.MkdirTemp("", "cleanroom-doctor-")
	if terr != nil {
		return nil, nil, fmt.Errorf("the database needs recovery and no copy could be made: %w", terr)
	}
	if cerr := audit.CopyStore(dir.Database(), tmp); cerr != nil {
		os.RemoveAll(tmp)
		return nil, nil, fmt.Errorf("the database needs recovery; copying it: %w", cerr)
	}
	db, err = openDatabase(tmp, false)
	if err != nil {
		os.RemoveAll(tmp)
		return nil, nil, err
	}
	return db, &diagnosisCleanup{close: func() { db.Close(); os.RemoveAll(tmp) }, recovered: true}, nil
}

// verifyTables checks every table's blocks against their checksums. Badger
// v4.9.6 panics on a table whose block fails (it formats the failed block's
// offset from a nil block); the panic is the finding.
func verifyTables(db *badger.DB) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("a table fails its checksum (%v)", p)
		}
	}()
	return db.VerifyChecksum()
}

// verifyLog exports the whole log and verifies it as an auditor would, with
// the room's own verifier key.
func verifyLog(ctx context.Context, log *audit.Log, id *identity) error {
	vkey, err := audit.VerifierKey(id.info.Origin, id.key.Public().(ed25519.PublicKey))
	if err != nil {
		return err
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return err
	}
	pr, pw := io.Pipe()
	go func() {
		w := bufio.NewWriter(pw)
		err := log.Export(ctx, w, 0, 0, nil)
		if err == nil {
			err = w.Flush()
		}
		pw.CloseWithError(err)
	}()
	_, err = audit.Verify(bufio.NewReader(pr), v, nil)
	pr.Close()
	return err
}

// reconcileLedgers compares each collaboration's ledger with the epsilon its
// audit log records as charged.
func (r *Room) reconcileLedgers(ctx context.Context) []string {
	var out []string
	var ids []string
	err := r.db.View(func(txn *badger.Txn) error {
		return collabs.Scan(r.txn(txn), func(c *collabRecord) error { ids = append(ids, c.ID); return nil })
	})
	if err != nil {
		return []string{err.Error()}
	}
	for _, id := range ids {
		var charged int64
		err := r.audit.Entries(ctx, audit.Scope{Collaborations: []string{id}}, func(_ int64, e audit.Entry) error {
			if e.Decision.Allow {
				charged += e.EpsilonMicro
			}
			return nil
		})
		if err != nil {
			out = append(out, fmt.Sprintf("the log of %s cannot be read: %v", id, err))
			continue
		}
		b := &budgetRecord{}
		err = r.db.View(func(txn *badger.Txn) (err error) { b, err = budgets.Get(r.txn(txn), id); return })
		if errors.Is(err, store.ErrNotFound) {
			b, err = &budgetRecord{}, nil
		}
		if err != nil {
			out = append(out, fmt.Sprintf("the ledger of %s cannot be read: %v", id, err))
			continue
		}
		if b.EpsilonUnits != charged {
			out = append(out, fmt.Sprintf("the ledger of %s says %d micro-epsilon spent, its audit log %d", id, b.EpsilonUnits, charged))
		}
	}
	return out
}
