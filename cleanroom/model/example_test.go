package model_test

import (
	"fmt"
	"os"
	"strings"

	"github.com/opencleanroom/cleanroom/cleanroom/model"
)

// A member scores its own customer list with a model file the room
// trained, on its own machine: every row, in order, with a score column.
func ExampleModel_ScoreCSV() {
	m, err := model.Parse([]byte(`{"format": "cleanroom.dev/model/v1", "method": "m", "member": "coursely",
	 "label": {"column": "pulsefit.conversions"},
	 "features": [{"name": "coursely.age_band", "column": "age_band", "kind": "categorical", "domain": ["18-24", "25-34"]}],
	 "trees": [{"nodes": [{"feature": 0, "children": [1, 2], "counts": [300, 100]},
	                      {"feature": -1, "counts": [100, 80]}, {"feature": -1, "counts": [200, 20]}]}],
	 "depth": 1, "min_leaf": 50, "epsilon": 0.5, "tree_epsilon": 0.5, "noise": true}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	list := "email,age_band\nann@example.com,18-24\nbob@example.com,25-34\ncy@example.com,65+\n"
	if _, err := m.ScoreCSV(strings.NewReader(list), os.Stdout, "score"); err != nil {
		fmt.Println(err)
	}
	// Output:
	// email,age_band,score
	// ann@example.com,18-24,0.445055
	// bob@example.com,25-34,0.094595
	// cy@example.com,65+,0.251244
}
