package cleanroom

import (
	"context"
	"fmt"

	"github.com/dgraph-io/badger/v4"

	"github.com/opencleanroom/cleanroom/cleanroom/internal/store"
)

// sweepOrphans deletes, when the room opens, the data that no record names
// any more: what a stop left between an action that made data unreachable
// and its deletion, such as a part stored between two rounds of its
// upload's deletion, the relay task of a replaced dataset, a task offered
// by a commit that never happened, or the layer a completed relay task was
// made from. It runs before the room serves and before it resumes relays,
// when no request is writing data that a record is about to name. A
// deletion that fails costs disk space, not correctness: it is logged, and
// the room opens.
func (r *Room) sweepOrphans(ctx context.Context) error {
	var ups, tasks []string
	var layers []uploadLayer
	var joins []matchRun
	exports := map[string]bool{} // the exports a query may read
	err := r.db.View(func(txn *badger.Txn) error {
		live := map[string]bool{}
		err := collabs.Scan(r.txn(txn), func(c *collabRecord) error {
			for id := range c.Tasks {
				live[id] = true
			}
			for _, id := range c.RetiredTasks {
				live[id] = true
			}
			if r.retired(c) {
				return nil // its retirement deletes every layer and join
			}
			if c.Match != nil {
				if _, changed := datasetChanged(c); !changed {
					exports[r.exportDir(c)] = true
				}
			}
			left, err := layersLeft(txn, c)
			if err != nil {
				return err
			}
			layers = append(layers, left...)
			runs, err := store.JoinRunsOf(txn, c.ID)
			for _, run := range runs {
				if c.Match == nil || run != c.Match.Run {
					joins = append(joins, matchRun{c.ID, run})
				}
			}
			return err
		})
		if err != nil {
			return err
		}
		withData, err := store.TasksWithData(txn)
		if err != nil {
			return err
		}
		for _, id := range withData {
			if !live[id] {
				tasks = append(tasks, id)
			}
		}
		if withData, err = store.UploadsWithData(txn); err != nil {
			return err
		}
		for _, id := range withData {
			switch ok, err := uploads.Exists(r.txn(txn), id); {
			case err != nil:
				return err
			case !ok:
				ups = append(ups, id)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, id := range ups {
		r.forgetLeft(ctx, "orphaned-upload/"+id, store.UploadData(id)...)
	}
	for _, id := range tasks {
		r.forgetLeft(ctx, "orphaned-task/"+id, store.TaskData(id)...)
	}
	for _, l := range layers {
		r.forgetLeft(ctx, fmt.Sprintf("orphaned-layer/%s/%d", l.upload, l.layer), store.Layer(l.upload, l.layer).Span())
	}
	for _, j := range joins {
		r.forgetLeft(ctx, fmt.Sprintf("orphaned-join/%s/%d", j.collab, j.run), store.Join(j.collab, j.run).Span())
	}
	r.sweepExports(exports)
	return nil
}

// datasetChanged returns the first member whose dataset is not the one c's
// latest match run matched, if any (c has a match).
func datasetChanged(c *collabRecord) (member string, changed bool) {
	for _, m := range c.Members {
		if ds := c.Datasets[m]; ds == nil || ds.Upload != c.Match.Uploads[m] {
			return m, true
		}
	}
	return "", false
}

// matchRun names one match run of a collaboration (store.Join).
type matchRun struct {
	collab string
	run    int64
}

// uploadLayer names one layer of an upload's set (store.Layer).
type uploadLayer struct {
	upload string
	layer  int
}

// layersLeft returns the layers stored of c's datasets that nothing reads:
// a set reads its latest layer (Layers), and an open relay task of it
// builds the next; a completed task's layer, or a refused task's, is left
// by a stop before its deletion.
func layersLeft(txn *badger.Txn, c *collabRecord) ([]uploadLayer, error) {
	var left []uploadLayer
	for _, ds := range c.Datasets {
		read := map[int]bool{ds.Layers: true}
		for _, t := range c.Tasks {
			if t.Upload == ds.Upload {
				read[t.Layer+1] = true
			}
		}
		stored, err := store.LayersOf(txn, ds.Upload)
		if err != nil {
			return nil, err
		}
		for _, l := range stored {
			if !read[l] {
				left = append(left, uploadLayer{ds.Upload, l})
			}
		}
	}
	return left, nil
}
