package console

import (
	"flag"
	"fmt"
	"os"
	"sync"
	"testing"
)

// The room the tests share: starting a room and uploading and matching two
// lists takes a few seconds, so the tests that need one share it (each
// asks only questions that leave what the others read unchanged, or reads
// what they need after its own actions).
var shared struct {
	once sync.Once
	f    *fixture
	dir  string
	err  error
}

// alliance returns the shared room, started on first use.
func alliance(t testing.TB) *fixture {
	t.Helper()
	shared.once.Do(func() {
		shared.dir, shared.err = os.MkdirTemp("", "cleanroom-console-")
		if shared.err == nil {
			shared.f, shared.err = startAlliance(shared.dir, 3000, 2000)
		}
	})
	if shared.err != nil {
		t.Fatalf("starting the room: %v", shared.err)
	}
	return shared.f
}

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	stopBrowser()
	if shared.f != nil {
		shared.f.stop()
	}
	if shared.dir != "" {
		if err := os.RemoveAll(shared.dir); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}
	os.Exit(code)
}
