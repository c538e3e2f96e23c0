package policy_test

import (
	"context"
	"fmt"
	"log"

	"github.com/opencleanroom/cleanroom/policy"
)

// An analyst asks to group the overlap by a join column; the policy refuses
// and says why.
func Example() {
	e, err := policy.New(context.Background(), policy.Options{})
	if err != nil {
		log.Fatal(err)
	}
	d := e.Decide(context.Background(), policy.Input{
		Principal: policy.Principal{ID: "ana", Role: policy.RoleAnalyst, Partner: "coursely"},
		Action:    "query.run",
		Collaboration: &policy.Collaboration{
			ID: "alliance", Members: []string{"coursely", "fitapp"},
			Settings: policy.Settings{Columns: []string{"age_band", "region"}},
			Datasets: map[string]policy.DatasetState{"coursely": {Uploaded: true, Matched: true}, "fitapp": {Uploaded: true, Matched: true}},
		},
		Resource: policy.Resource{Query: &policy.QueryShape{Metrics: []string{"count"}, GroupBy: []string{"email"}, Epsilon: 0.1}},
	})
	fmt.Println(d.Allow, d.Reasons, d.Constraints.MinGroupSize)
	// Output: false [the column email may never be output or filtered on] 50
}
