package policy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
)

// CollaborationPackage is the package a collaboration's module must declare.
// Its "deny" (a set of sentences) adds denials and its "constraints" (an
// object like Constraints) joins the strictest-wins combination; it cannot
// define rules of the default package, so it can only tighten.
const CollaborationPackage = "collaboration"

const collabModuleFile = "collaboration.rego"

// maxModuleSize bounds a proposed module.
const maxModuleSize = 64 << 10

// ErrCompile is wrapped by CompileError.
var ErrCompile = errors.New("policy does not compile")

// CompileError lists what is wrong with a policy, each with its line and
// column, so the member who proposed it can fix it.
type CompileError struct {
	Problems []Problem
}

// Problem is one compile error.
type Problem struct {
	File         string // collaboration.rego, or a file of the default bundle
	Line, Column int
	Message      string
}

func (e *CompileError) Error() string {
	var b strings.Builder
	b.WriteString("policy does not compile:")
	for _, p := range e.Problems {
		fmt.Fprintf(&b, "\n  %s:%d:%d: %s", p.File, p.Line, p.Column, p.Message)
	}
	return b.String()
}

func (e *CompileError) Unwrap() error { return ErrCompile }

func newCompileError(err error) *CompileError {
	ce := &CompileError{}
	var errs ast.Errors
	if errors.As(err, &errs) {
		for _, e := range errs {
			p := Problem{Message: e.Message}
			if e.Location != nil {
				p.File, p.Line, p.Column = e.Location.File, e.Location.Row, e.Location.Col
			}
			ce.Problems = append(ce.Problems, p)
		}
	}
	if len(ce.Problems) == 0 {
		ce.Problems = []Problem{{Message: err.Error()}}
	}
	return ce
}

// Module is a collaboration's own policy module, parsed and identified by
// the SHA-256 of its source.
type Module struct {
	Source []byte
	Hash   string
	parsed *ast.Module
}

// HashModule returns the SHA-256 (hex) that identifies a module's source:
// what members approve.
func HashModule(src []byte) string {
	h := sha256.Sum256(src)
	return hex.EncodeToString(h[:])
}

// ParseModule parses and checks a proposed collaboration module: Rego v1,
// package collaboration, and compiling together with the default bundle
// under the engine's restricted built-ins (so http.send and friends are
// refused here, with their line and column).
func (e *Engine) ParseModule(ctx context.Context, src []byte) (*Module, error) {
	if len(src) > maxModuleSize {
		return nil, &CompileError{Problems: []Problem{{Message: fmt.Sprintf("module larger than %d bytes", maxModuleSize)}}}
	}
	m, err := ast.ParseModuleWithOpts(collabModuleFile, string(src), ast.ParserOptions{RegoVersion: ast.RegoV1, Capabilities: e.caps})
	if err != nil {
		return nil, newCompileError(err)
	}
	if got := m.Package.Path.String(); got != "data."+CollaborationPackage {
		loc := m.Package.Location
		return nil, &CompileError{Problems: []Problem{{File: collabModuleFile, Line: loc.Row, Column: loc.Col,
			Message: fmt.Sprintf("package must be %s, not %s", CollaborationPackage, strings.TrimPrefix(got, "data."))}}}
	}
	if _, err := e.compile(m); err != nil {
		return nil, err
	}
	return &Module{Source: append([]byte(nil), src...), Hash: HashModule(src), parsed: m}, nil
}
