// Package cleanroom is the room's domain and service: collaborations and
// their members, datasets, match runs, aggregate queries under thresholds and
// differential privacy, and the privacy budget. It composes the crypto,
// matcher, policy and audit packages, which never import it.
package cleanroom
