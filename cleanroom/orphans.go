package cleanroom

import (
	"context"

	"github.com/dgraph-io/badger/v4"

	"github.com/opencleanroom/cleanroom/cleanroom/internal/store"
)

// sweepOrphans deletes, when the room opens, the data that no record names
// any more: what a stop left between an action that made data unreachable
// and its deletion, such as a part stored between two rounds of its
// upload's deletion, the relay task of a replaced dataset, or a task
// offered by a commit that never happened. It runs before the room serves
// and before it resumes relays, when no request is writing data that a
// record is about to name. A deletion that fails costs disk space, not
// correctness: it is logged, and the room opens.
func (r *Room) sweepOrphans(ctx context.Context) error {
	var ups, tasks []string
	err := r.db.View(func(txn *badger.Txn) error {
		live := map[string]bool{}
		err := collabs.Scan(r.txn(txn), func(c *collabRecord) error {
			for id := range c.Tasks {
				live[id] = true
			}
			for _, id := range c.RetiredTasks {
				live[id] = true
			}
			return nil
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
	return nil
}
