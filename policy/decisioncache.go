package policy

import (
	"slices"
	"sync"

	"github.com/open-policy-agent/opa/v1/ast"
)

// Decisions are remembered, and a repeated decision is answered without
// evaluating the policy again, when that is sound: when the decision is a
// pure function of what the cache is keyed by.
//
// A decision is computed from three things only: the compiled policy (the
// default bundle and the collaboration's module, named by its hash), the
// data the engine loaded with it (the room's defaults and activation rules,
// fixed for the Engine's life), and the input document. The key
// (decisionkey.go) holds the policy's hash and everything the input
// document is built from, including now_unix (the policy reads it, to
// expire collaborations): a remembered decision is reused within the second
// it was made in, for the same principal, action, collaboration state,
// usage and resource. The collaboration's settings and constraints, the
// largest part of an input, enter the key as the digest they are cached
// under (collabState), of which they are a function.
//
// The evaluation must not read anything else. The engine's capabilities
// already leave out the built-ins that reach outside it (http.send, clocks,
// randomness); a policy whose compiled rules still name a built-in that
// OPA marks non-deterministic, or one that reads the clock or a random
// source on its own (impureBuiltins), is never cached: its decisions are evaluated
// every time. Only decisions evaluated to completion are remembered; a
// timeout or an evaluation error depends on more than the key.
//
// Every decision is still returned to the room, which records it in the
// audit log as it records an evaluated one; the cache saves the evaluation,
// not the decision.

// maxDecisions bounds the decision cache; it is cleared when full. Keys
// carry the second they were made in, so a full cache is mostly stale.
const maxDecisions = 4096

// impureBuiltins read the wall clock or a random source although OPA does
// not mark them non-deterministic: x509 chain verification checks validity
// at the current time, and AWS's SigV4a signatures are ECDSA with a random
// nonce.
var impureBuiltins = map[string]bool{
	ast.CryptoX509ParseAndVerifyCertificates.Name:            true,
	ast.CryptoX509ParseAndVerifyCertificatesWithOptions.Name: true,
	ast.ProvidersAWSSignReqObj.Name:                          true,
	ast.NowNanos.Name:                                        true,
}

// pureRules reports whether the compiled modules name no built-in whose
// result depends on more than its arguments.
func pureRules(c *ast.Compiler) bool {
	pure := true
	for _, m := range c.Modules {
		ast.WalkRefs(m, func(r ast.Ref) bool {
			name := r.String()
			if b, ok := ast.BuiltinMap[name]; ok && (b.IsNondeterministic() || impureBuiltins[name]) {
				pure = false
			}
			return !pure
		})
		if !pure {
			return false
		}
	}
	return true
}

// decisionCache remembers decisions by key (see above).
type decisionCache struct {
	mu sync.RWMutex
	m  map[string]Decision
}

func newDecisionCache() *decisionCache {
	return &decisionCache{m: make(map[string]Decision)}
}

// get returns a copy of the decision remembered under key: callers own the
// slices of what Decide returns.
func (c *decisionCache) get(key []byte) (Decision, bool) {
	c.mu.RLock()
	d, ok := c.m[string(key)]
	c.mu.RUnlock()
	if !ok {
		return Decision{}, false
	}
	return d.clone(), true
}

func (c *decisionCache) put(key []byte, d Decision) {
	d = d.clone()
	c.mu.Lock()
	if len(c.m) >= maxDecisions {
		clear(c.m)
	}
	c.m[string(key)] = d
	c.mu.Unlock()
}

// reset forgets every decision.
func (c *decisionCache) reset() {
	c.mu.Lock()
	clear(c.m)
	c.mu.Unlock()
}

func (d Decision) clone() Decision {
	d.Reasons = slices.Clone(d.Reasons)
	k := &d.Constraints
	k.AllowedDimensions = slices.Clone(k.AllowedDimensions)
	k.AllowedMetrics = slices.Clone(k.AllowedMetrics)
	k.NeverOutputColumns = slices.Clone(k.NeverOutputColumns)
	return d
}
