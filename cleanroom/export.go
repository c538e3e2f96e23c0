package cleanroom

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/opencleanroom/cleanroom/cleanroom/columnar"
	"github.com/opencleanroom/cleanroom/cleanroom/internal/store"
	"github.com/opencleanroom/cleanroom/cleanroom/job"
	"github.com/opencleanroom/cleanroom/matcher"
)

// The export of a collaboration's datasets for the query engine outside
// the room (package columnar): what a Beam job reads. It lives under the
// engine's work directory, one directory per collaboration and match run,
// made at the first query after the match and removed when a dataset it
// holds is replaced, a newer run is recorded or the collaboration retired
// (and, left by a stop, when the room opens: sweepExports). It holds the
// same tokens and attribute columns as the room's database, on the room's
// disk, readable by the operator alone (0700).

// exportsDir is where a collaboration's exports are.
func (r *Room) exportsDir(collab string) string {
	return filepath.Join(r.engineDir(), "exports", collabDirName(collab))
}

// jobsDir is where the jobs of a collaboration's queries run; a failed
// job leaves its log there (job.Runner.Query).
func (r *Room) jobsDir(collab string) string {
	return filepath.Join(r.engineDir(), "jobs", collabDirName(collab))
}

// collabDirName names a collaboration's directories of the engine:
// collaboration ids are names, and a digest keeps any of them a single,
// plain path element.
func collabDirName(collab string) string {
	h := sha256.Sum256([]byte(collab))
	return hex.EncodeToString(h[:8])
}

// exportDir is the directory of the export of c's latest match run.
func (r *Room) exportDir(c *collabRecord) string {
	return filepath.Join(r.exportsDir(c.ID), fmt.Sprintf("run-%d-%.16s", c.Match.Run, c.Match.JoinDigest))
}

// exportForJob returns the directory of the export of c's datasets as its
// latest match run matched them, writing it first if needed (once however
// many queries ask at the same time).
func (r *Room) exportForJob(ctx context.Context, c *collabRecord) (string, error) {
	if m, changed := datasetChanged(c); changed {
		return "", conflict("the dataset of %s changed since the match; match again", m)
	}
	base, dir := r.exportsDir(c.ID), r.exportDir(c)
	_, err, _ := r.cache.flight.Do("export/"+dir, func() (any, error) {
		if _, err := columnar.ReadManifest(dir); err == nil {
			return nil, nil
		}
		// A directory without a manifest is an export that did not
		// finish: made again from the start.
		if err := os.RemoveAll(dir); err != nil {
			return nil, err
		}
		if err := os.MkdirAll(base, 0o700); err != nil {
			return nil, err
		}
		if err := r.writeExport(ctx, c, dir); err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("cleanroom: exporting the datasets for the query engine: %w", err)
		}
		// A dataset replaced, or a match recorded, while the export was
		// written removed the exports it found (dropExports) before this
		// one was done: read again, the export goes if it is stale.
		if err := r.exportCurrent(c); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		removeOtherExports(base, dir)
		return nil, nil
	})
	return dir, err
}

// exportCurrent refuses if c's latest match run, the one an export was
// made of, is no longer the collaboration's, one of the datasets it
// matched was replaced, or the collaboration was revoked or expired.
func (r *Room) exportCurrent(c *collabRecord) error {
	cur, err := r.collab(c.ID)
	if err != nil {
		return err
	}
	// Revoked or expired meanwhile: its data is deleted (retire.go).
	if err := dataAllowed(cur, r.now()); err != nil {
		return err
	}
	if cur.Match == nil || cur.Match.Run != c.Match.Run {
		return conflict("the collaboration matched again meanwhile; ask again")
	}
	if m, changed := datasetChanged(cur); changed {
		return conflict("the dataset of %s changed since the match; match again", m)
	}
	return nil
}

// dropExports deletes a collaboration's exports: a dataset they hold was
// replaced, or a newer match run made them stale. (The data they were
// made from is deleted with an audit entry of its own.) A job reading one
// fails, and its query is answered with an error and charged nothing.
// Whatever the room's engine now: a room that ran Beam before keeps none.
func (r *Room) dropExports(collab string) {
	removeOtherExports(r.exportsDir(collab), "")
	os.RemoveAll(r.jobsDir(collab)) // the failed jobs' logs, of queries of that data
}

// sweepExports deletes, when the room opens, the exports that no query may
// read: those of a collaboration's runs but the current export of its
// latest (keep, by directory), and those of collaborations retired or
// unknown, which a stop left before their dropExports.
func (r *Room) sweepExports(keep map[string]bool) {
	base := filepath.Join(r.engineDir(), "exports")
	collabs, _ := os.ReadDir(base)
	removed := 0
	for _, c := range collabs {
		dir := filepath.Join(base, c.Name())
		runs, _ := os.ReadDir(dir)
		for _, run := range runs {
			if p := filepath.Join(dir, run.Name()); !keep[p] {
				if err := os.RemoveAll(p); err != nil {
					r.log.Warn("removing a stale export failed; it goes when the room opens again", "err", err)
					continue
				}
				removed++
			}
		}
		os.Remove(dir) // if nothing is left in it
	}
	if removed > 0 {
		r.log.Info("removed exports no query reads", "exports", removed)
	}
	r.sweepJobs(keep)
}

// sweepJobs deletes, when the room opens, what jobs a stop cut short
// left beside their logs (a pipeline's partial output), and the jobs of
// collaborations without an export kept (retired, or their data
// replaced), whose dropExports a stop came before.
func (r *Room) sweepJobs(keep map[string]bool) {
	live := map[string]bool{}
	for dir := range keep {
		live[filepath.Base(filepath.Dir(dir))] = true
	}
	base := filepath.Join(r.engineDir(), "jobs")
	entries, _ := os.ReadDir(base)
	for _, e := range entries {
		dir := filepath.Join(base, e.Name())
		if !live[e.Name()] {
			os.RemoveAll(dir)
			continue
		}
		jobs, _ := os.ReadDir(dir)
		for _, j := range jobs {
			job.KeepLog(filepath.Join(dir, j.Name()))
		}
	}
}

// removeOtherExports deletes a collaboration's exports of match runs but
// keep's.
func removeOtherExports(base, keep string) {
	entries, _ := os.ReadDir(base)
	for _, e := range entries {
		if p := filepath.Join(base, e.Name()); p != keep && strings.HasPrefix(e.Name(), "run-") {
			os.RemoveAll(p)
		}
	}
}

// writeExport writes the export of c's matched datasets into dir: each
// member's tokens of its current layer (those the match compared) with
// their rows, and its attribute columns from its upload.
func (r *Room) writeExport(ctx context.Context, c *collabRecord, dir string) error {
	var rows, need int64
	for _, m := range c.Members {
		ds := c.Datasets[m]
		rows = max(rows, ds.Rows)
		need += 40*ds.Rows + ds.bytesOfValues()
	}
	release, err := r.disk.reserve(need)
	if err != nil {
		return err
	}
	defer release()
	shards := r.cfg.Engine.Shards
	if shards <= 0 {
		shards = columnar.Shards(rows)
	}
	w, err := columnar.Create(dir, shards)
	if err != nil {
		return err
	}
	for _, m := range c.Members {
		if err := r.exportMember(ctx, w, m, c.Datasets[m]); err != nil {
			return err
		}
	}
	return w.Close()
}

// bytesOfValues estimates a dataset's attribute values on disk: its
// segments hold them with its tokens.
func (d *datasetRecord) bytesOfValues() int64 { return int64(len(d.Columns)) * 16 * d.Rows }

func (r *Room) exportMember(ctx context.Context, w *columnar.Writer, member string, ds *datasetRecord) error {
	mw, err := w.Member(member, ds.Rows, ds.Columns)
	if err != nil {
		return err
	}
	// The pairs, as the matcher reads them (no canaries).
	lr := r.newLayerReader(ds, false)
	buf := make([]matcher.Pair, 4096)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, rerr := lr.Read(buf)
		for _, p := range buf[:n] {
			if err := mw.Pair(p.Token[:], p.Row); err != nil {
				return err
			}
		}
		if errors.Is(rerr, io.EOF) {
			break
		}
		if rerr != nil {
			return rerr
		}
	}
	// The values, by row, from the upload's parts.
	vals := make([][]byte, len(ds.Columns))
	for part := range ds.Parts {
		if err := ctx.Err(); err != nil {
			return err
		}
		base := uint32(part * ds.RowsPerPart)
		err := r.withSegment(store.Segments(ds.Upload).Key(part), func(seg []byte) error {
			p, err := store.DecodePart(seg)
			if err != nil {
				return err
			}
			if p.Columns != len(ds.Columns) {
				return ErrCorruptSegment
			}
			row, col := base, 0
			var werr error
			err = p.EachValue(func(j int, v []byte) {
				vals[j] = v
				if col++; col == p.Columns {
					if werr == nil {
						werr = mw.Values(row, vals)
					}
					row, col = row+1, 0
				}
			})
			if err == nil && p.Columns == 0 {
				for i := range p.Rows {
					if werr == nil {
						werr = mw.Values(base+uint32(i), vals)
					}
				}
			}
			if err != nil {
				return err
			}
			return werr
		})
		if err != nil {
			return err
		}
	}
	return mw.Close()
}
