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
			Settings: policy.Settings{Constraints: policy.Constraints{AllowedDimensions: []string{"coursely.age_band", "coursely.region"}}},
			Datasets: map[string]policy.DatasetState{"coursely": {Uploaded: true, Matched: true}, "fitapp": {Uploaded: true, Matched: true}},
		},
		Resource: policy.Resource{Query: &policy.QueryShape{Metrics: []string{"count"}, GroupBy: []string{"coursely.email"}, Epsilon: 0.1}},
	})
	fmt.Println(d.Allow, d.Reasons, d.Constraints.MinGroupSize)
	// Output: false [the column coursely.email may never be output or filtered on] 50
}
