package console

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/opencleanroom/cleanroom/audit/bundle"
)

// The auditor's source: the bundle the room lets this principal export
// (GET /v1/audit/export), fetched once and on request, checked by the
// verifier of cleanroom audit verify, and kept byte for byte so that the
// export button gives exactly what was checked.

// maxBundleBytes bounds a bundle the console holds in memory; a larger log
// is exported with cleanroom audit export --from/--to.
const maxBundleBytes = 512 << 20

// errBundleTooLarge means the room's bundle is larger than maxBundleBytes.
var errBundleTooLarge = errors.New("the audit bundle is larger than the console holds (512 MiB): export it in ranges with cleanroom audit export --from --to")

type auditState struct {
	mu   sync.Mutex
	snap *auditSnapshot
	// seen is the latest checkpoint of a bundle the console verified:
	// every later bundle must extend it, as cleanroom audit verify --since
	// checks, so that a room cannot show the console one log and, on a
	// refresh, another that rewrites it.
	seen []byte
}

// auditSnapshot is one fetched bundle and what its verification found.
type auditSnapshot struct {
	Bundle     []byte
	Report     *bundle.Report // nil unless every check passed
	VerifyErr  error          // why the bundle does not verify
	FetchErr   error          // why there is no bundle
	Entries    []indexedEntry // in index order; empty unless verified
	Checkpoint string         // the latest signed checkpoint, as signed
	Fetched    time.Time
}

type indexedEntry struct {
	Index int64
	E     bundle.Entry
}

// Verified reports whether the bundle passed every check.
func (a *auditSnapshot) Verified() bool { return a.Report != nil }

// Sparse reports whether the bundle holds selected entries with their
// proofs rather than every entry of a range.
func (a *auditSnapshot) Sparse() bool {
	return a.Report != nil && a.Report.Format == bundle.SparseBundleFormat
}

// currentAudit returns the snapshot, fetching one if there is none yet.
func (s *Server) currentAudit(ctx context.Context) *auditSnapshot {
	s.audit.mu.Lock()
	defer s.audit.mu.Unlock()
	if s.audit.snap == nil {
		s.audit.snap = s.fetchAudit(ctx)
	}
	return s.audit.snap
}

// fetchAudit fetches and verifies a bundle against the checkpoint the
// console saw last, and keeps its checkpoint if it verifies. s.audit.mu is
// held.
func (s *Server) fetchAudit(ctx context.Context) *auditSnapshot {
	snap := s.fetchBundle(ctx, s.audit.seen)
	if snap.Verified() {
		s.audit.seen = []byte(snap.Checkpoint)
	}
	return snap
}

func (s *Server) refreshAudit(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := s.roomContext(r)
	defer cancel()
	s.audit.mu.Lock()
	s.audit.snap = s.fetchAudit(ctx)
	s.audit.mu.Unlock()
	http.Redirect(w, r, s.link("/audit"), http.StatusSeeOther)
}

// fetchBundle exports the bundle this principal may see and verifies it
// with the room's verifier key, exactly as cleanroom audit verify does
// (with --since, when since is not nil).
func (s *Server) fetchBundle(ctx context.Context, since []byte) *auditSnapshot {
	snap := &auditSnapshot{Fetched: time.Now()}
	if since != nil { // the bundle is to carry since with its proof
		if _, err := bundle.ParseCheckpoint(since, s.verifier); err != nil {
			snap.VerifyErr = fmt.Errorf("the checkpoint the console showed last: %w", err)
			return snap
		}
	}
	var buf bytes.Buffer
	fe, err := s.cfg.Client.ExportAuditFresh(ctx, &limitedBuffer{&buf, maxBundleBytes}, 0, since)
	if err != nil {
		snap.FetchErr = err
		return snap
	}
	snap.Bundle = buf.Bytes()
	var entries []indexedEntry
	// The room's answer must hold the entry it logged this export under:
	// one without it is an older bundle, replayed.
	rep, err := s.cfg.Client.VerifyFresh(bytes.NewReader(snap.Bundle), fe, since, func(i int64, e bundle.Entry) error {
		entries = append(entries, indexedEntry{i, e})
		return nil
	})
	if err != nil {
		// What VerifyEntries handed over is not to be trusted: show none.
		snap.VerifyErr = err
		return snap
	}
	snap.Report, snap.Entries = rep, entries
	snap.Checkpoint = rep.Checkpoint // the one the entries were verified against
	return snap
}

// limitedBuffer refuses to grow past max bytes.
type limitedBuffer struct {
	b   *bytes.Buffer
	max int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if l.b.Len()+len(p) > l.max {
		return 0, errBundleTooLarge
	}
	return l.b.Write(p)
}

// entryPage is one entry in full.
type entryPage struct {
	Snap      *auditSnapshot
	Entry     indexedEntry
	Canonical string
}

func (s *Server) entry(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := s.roomContext(r)
	defer cancel()
	snap := s.currentAudit(ctx)
	i, err := strconv.ParseInt(r.PathValue("index"), 10, 64)
	if err != nil {
		s.fail(w, r, http.StatusNotFound, "There is no such entry.", nil)
		return
	}
	for _, e := range snap.Entries {
		if e.Index == i {
			b, _ := e.E.MarshalCanonical()
			s.render(w, http.StatusOK, "entry", fmt.Sprintf("Audit entry %d", i), "audit", entryPage{Snap: snap, Entry: e, Canonical: string(b)})
			return
		}
	}
	s.fail(w, r, http.StatusNotFound, "The verified bundle holds no such entry.", nil)
}

func (s *Server) downloadBundle(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := s.roomContext(r)
	defer cancel()
	snap := s.currentAudit(ctx)
	if snap.Bundle == nil {
		s.fail(w, r, http.StatusBadGateway, "The room did not give an audit bundle.", snap.FetchErr)
		return
	}
	size := "unverified"
	if snap.Report != nil {
		size = strconv.FormatInt(snap.Report.TreeSize, 10)
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="cleanroom-audit-%s-%s.bundle"`, safeName(s.cfg.Client.Room().ID), size))
	w.Write(snap.Bundle)
}
