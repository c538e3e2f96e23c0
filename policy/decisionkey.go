package policy

import (
	"encoding/json"
	"time"
)

// decisionKey is what a decision is remembered under (decisioncache.go):
// everything the input document is built from, in JSON, read without
// building the document. The collaboration's settings stand as the digest
// their OPA value and constraints are cached under (collabState), which
// names the policy too. TestDecisionKeyCoversInput changes every field of
// an Input in turn and checks that the key changes with it.
type decisionKey struct {
	Policy    string     `json:"p"`
	Now       int64      `json:"n"` // input.now_unix
	Principal Principal  `json:"a"`
	Action    Action     `json:"x"`
	Resource  Resource   `json:"r"`
	Usage     Usage      `json:"u"`
	Collab    *collabKey `json:"c"`
}

type collabKey struct {
	ID         string                  `json:"i"`
	Members    []string                `json:"m"`
	Datasets   map[string]DatasetState `json:"d"` // encoding/json sorts the names
	Revoked    bool                    `json:"r"`
	Expires    bool                    `json:"e"` // input.collaboration.expires_unix is present
	ExpiresAt  int64                   `json:"t"`
	PolicyHash string                  `json:"h"`
	State      []byte                  `json:"s"` // collabState's key
}

// key returns the key of in's decision under the policy named hash at now.
func (e *Engine) key(in Input, hash string, now time.Time, state string) ([]byte, error) {
	k := decisionKey{Policy: hash, Now: now.Unix(), Principal: in.Principal, Action: in.Action, Resource: in.Resource, Usage: in.Usage}
	if c := in.Collaboration; c != nil {
		k.Collab = &collabKey{ID: c.ID, Members: c.Members, Datasets: c.Datasets, Revoked: c.Revoked,
			Expires: !c.ExpiresAt.IsZero(), PolicyHash: c.PolicyHash, State: []byte(state)}
		if k.Collab.Expires {
			k.Collab.ExpiresAt = c.ExpiresAt.Unix()
		}
	}
	return json.Marshal(k)
}
