package audit

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var crashRounds = flag.Int("audit.crash-rounds", 20, "rounds of the SIGKILL crash test (>= 100 for a soak)")

const crashDirEnv = "CLEANROOM_AUDIT_CRASH_DIR"

// TestCrashChild is the child half of TestCrashRecovery: it appends from
// four goroutines and prints "ack N" after each Append returns, until killed.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("runs only as the child of TestCrashRecovery")
	}
	opts := testOpts()
	opts.CheckpointEvery = 64 // crash in the middle of checkpoints too
	l, err := Open(context.Background(), dir, opts)
	if err != nil {
		fmt.Println("open failed:", err)
		os.Exit(3)
	}
	var mu sync.Mutex
	for w := range 4 {
		go func() {
			for i := 0; ; i++ {
				r, err := l.Append(context.Background(), entry(w*1_000_000+i))
				if err != nil {
					fmt.Println("append failed:", err)
					os.Exit(4)
				}
				mu.Lock()
				fmt.Fprintf(os.Stdout, "ack %d\n", r.Index)
				mu.Unlock()
			}
		}()
	}
	select {} // until SIGKILL
}

func TestCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test takes a few seconds; skipped in -short")
	}
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	maxAcked := int64(-1)
	recovered := 0
	for round := range *crashRounds {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashDirEnv+"="+dir)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		acks := make(chan int64, 1024)
		readDone := make(chan []string)
		go func() {
			var other []string
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				line := sc.Text()
				if n, ok := strings.CutPrefix(line, "ack "); ok {
					if i, err := strconv.ParseInt(n, 10, 64); err == nil {
						acks <- i
						continue
					}
				}
				other = append(other, line)
			}
			close(acks)
			readDone <- other
		}()
		// Kill at a random moment after the child starts acknowledging.
		first, ok := <-acks
		if !ok {
			cmd.Wait()
			t.Fatalf("round %d: child acknowledged nothing: %s %s", round, <-readDone, stderr.String())
		}
		acked := []int64{first}
		timer := time.After(time.Duration(rng.IntN(150)) * time.Millisecond)
	collect:
		for {
			select {
			case i, ok := <-acks:
				if !ok {
					break collect
				}
				acked = append(acked, i)
			case <-timer:
				cmd.Process.Signal(syscall.SIGKILL)
				timer = nil
			}
		}
		other := <-readDone
		cmd.Wait()
		for _, line := range other {
			if strings.Contains(line, "failed") {
				t.Fatalf("round %d: child: %s", round, line)
			}
		}
		for _, i := range acked {
			maxAcked = max(maxAcked, i)
		}

		// An export of the directory as the crash left it: read through a
		// recovered copy when Badger needs one, the original untouched.
		if exportAfterCrash(t, dir, round) {
			recovered++
		}

		// Every acknowledged entry survived, and the log verifies.
		l, err := Open(context.Background(), dir, testOpts())
		if err != nil {
			t.Fatalf("round %d: reopen after SIGKILL: %v", round, err)
		}
		if l.Size() <= maxAcked {
			t.Fatalf("round %d: size %d after an acknowledged index %d", round, l.Size(), maxAcked)
		}
		for _, i := range acked[len(acked)-min(len(acked), 5):] {
			if _, err := l.Entry(context.Background(), i); err != nil {
				t.Fatalf("round %d: acknowledged entry %d lost: %v", round, i, err)
			}
		}
		var buf bytes.Buffer
		if err := l.Export(context.Background(), &buf, 0, 0, nil); err != nil {
			t.Fatalf("round %d: export: %v", round, err)
		}
		if _, err := Verify(&buf, testVerifier(t), nil); err != nil {
			t.Fatalf("round %d: verify: %v", round, err)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		t.Logf("round %d: %d acknowledged, log size %d", round, len(acked), l.Size())
	}
	if recovered == 0 {
		t.Errorf("no round left a store that a read-only open refuses: OpenForExport's recovery went untested")
	}
}

// exportAfterCrash exports the log in dir with OpenForExport, verifies the
// bundle, and checks that dir is exactly as before and the copy is gone.
// It reports whether the store needed a recovered copy.
func exportAfterCrash(t *testing.T, dir string, round int) bool {
	t.Helper()
	before := fingerprint(t, dir)
	tmp := t.TempDir()
	l, err := OpenForExport(context.Background(), dir, tmp, Options{})
	if err != nil {
		t.Fatalf("round %d: OpenForExport: %v", round, err)
	}
	copied := l.tmpDir != ""
	var buf bytes.Buffer
	err = l.Export(context.Background(), &buf, 0, 0, nil)
	if err == nil {
		_, err = Verify(&buf, testVerifier(t), nil)
	} else if strings.Contains(err.Error(), "no checkpoint") {
		err = nil // killed before the first checkpoint
	}
	if err != nil {
		t.Fatalf("round %d: export after the crash: %v", round, err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Fatalf("round %d: the recovered copy was not removed", round)
	}
	if after := fingerprint(t, dir); after != before {
		t.Fatalf("round %d: exporting changed the store", round)
	}
	return copied
}

// fingerprint hashes the names, sizes, modification times and data of the
// files in dir (the data only where there is some: Badger's value log is a
// 2 GiB sparse file).
func fingerprint(t *testing.T, dir string) string {
	t.Helper()
	h := sha256.New()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		f, err := os.Open(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		st, err := f.Stat()
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(h, "%s %d %d\n", e.Name(), st.Size(), st.ModTime().UnixNano())
		extents, ok := dataExtents(f, st.Size())
		if !ok {
			extents = [][2]int64{{0, st.Size()}}
		}
		for _, x := range extents {
			fmt.Fprintf(h, "%d-%d\n", x[0], x[1])
			if _, err := io.Copy(h, io.NewSectionReader(f, x[0], x[1]-x[0])); err != nil {
				t.Fatal(err)
			}
		}
		f.Close()
	}
	return hex.EncodeToString(h.Sum(nil))
}
