package main

import (
	"fmt"
	"io"
	"time"
)

// progress prints what the bench is doing on stderr, with the time since
// the measurements began; the report goes to stdout.
type progress struct {
	out     io.Writer
	started time.Time
}

// begin starts the clock shown on every later line.
func (p *progress) begin() { p.started = time.Now() }

func (p *progress) printf(format string, args ...any) {
	elapsed := ""
	if !p.started.IsZero() {
		elapsed = fmt.Sprintf("[%3.0fs] ", time.Since(p.started).Seconds())
	}
	fmt.Fprintf(p.out, "bench: "+elapsed+format+"\n", args...)
}
