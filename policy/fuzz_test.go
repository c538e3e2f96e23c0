package policy

import (
	"context"
	"errors"
	"testing"
)

// FuzzParseModule: any source either compiles into a module the engine can
// run, or is refused with a CompileError; nothing panics.
func FuzzParseModule(f *testing.F) {
	f.Add(goodModule)
	f.Add("package collaboration\n\nx := http.send({})\n")
	f.Add("package collaboration\n\ndeny contains sprintf(\"%v\", [input]) if true\n")
	e := newEngine(f)
	f.Fuzz(func(t *testing.T, src string) {
		m, err := e.ParseModule(context.Background(), []byte(src))
		if err != nil {
			if !errors.Is(err, ErrCompile) {
				t.Fatalf("error is not a CompileError: %v", err)
			}
			return
		}
		if err := e.SetCollaborationPolicy(context.Background(), "fuzz", m); err != nil {
			t.Fatalf("parsed module does not prepare: %v", err)
		}
	})
}
