package main

import (
	"fmt"
	"strings"
	"sync"
)

// progress is a one-line progress bar on stderr, redrawn in place, that
// other diagnostics (note) may interrupt. It is safe for concurrent use:
// an upload reports progress from its senders and skipped rows from its
// reader.
type progress struct {
	e     *env
	label string
	mu    sync.Mutex
	shown bool // the bar is the last thing on stderr, without a newline
	sent  int64
	read  float64
}

func newProgress(e *env, label string) *progress { return &progress{e: e, label: label, read: -1} }

// update shows the share of the input read (if known: read ≥ 0) and the
// rows sent.
func (p *progress) update(sent int64, read float64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.sent = sent
	if read >= 0 {
		p.read = min(read, 1)
	}
	p.draw()
}

func (p *progress) draw() {
	const width = 30
	n := min(max(int(width*p.read), 0), width)
	pct := "  ?%"
	if p.read >= 0 {
		pct = fmt.Sprintf("%3d%%", int(100*p.read))
	}
	fmt.Fprintf(p.e.stderr, "\r%s [%s%s] %s, %d rows sent", p.label, strings.Repeat("#", n), strings.Repeat(".", width-n), pct, p.sent)
	p.shown = true
}

// note prints a line of its own, ending the bar's line first.
func (p *progress) note(format string, a ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.shown {
		fmt.Fprintln(p.e.stderr)
		p.shown = false
	}
	fmt.Fprintf(p.e.stderr, format+"\n", a...)
}

// done ends the bar's line.
func (p *progress) done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.shown {
		fmt.Fprintln(p.e.stderr)
		p.shown = false
	}
}
