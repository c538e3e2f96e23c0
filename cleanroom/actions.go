package cleanroom

import "github.com/opencleanroom/cleanroom/policy"

// Actions the room records in its audit log without asking the policy:
// its own (creating the room, relaying a set, deleting what nothing reads
// any more) and the refusals it makes before there is anyone to decide for
// (a failed authentication, a request on a route that names no action).
// Every other action is one the policy decides (policy.Actions).
const (
	actionRoomInit     policy.Action = "room.init"
	actionDatasetRelay policy.Action = "dataset.relay"
	actionDataDelete   policy.Action = "data.delete"
	actionAuthToken    policy.Action = "auth.token"
	actionRequest      policy.Action = "request"
)
