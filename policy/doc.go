// Package policy decides every action in the room with Rego sharing
// policies evaluated in-process by OPA: it loads the embedded default bundle
// and each collaboration's approved policy, and returns decisions with
// reasons for every denial and the constraints (minimum group size, epsilon,
// allowed columns) the rest of the room enforces.
//
// OPA stays inside this package; no other package imports it.
package policy
