package main

import (
	"bytes"
	"sync"
	"time"
)

// timedLine is one output line and when its end arrived.
type timedLine struct {
	At   time.Time
	Text string
}

// lineRecorder splits what is written into lines stamped with the time
// their end arrived. Both of a process's streams may write to it at once.
type lineRecorder struct {
	mu      sync.Mutex
	partial []byte
	done    []timedLine
}

func (l *lineRecorder) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	l.partial = append(l.partial, p...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		l.done = append(l.done, timedLine{At: now, Text: string(l.partial[:i])})
		l.partial = l.partial[i+1:]
	}
	return len(p), nil
}

func (l *lineRecorder) lines() []timedLine {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := append([]timedLine(nil), l.done...)
	if len(l.partial) > 0 {
		out = append(out, timedLine{At: time.Now(), Text: string(l.partial)})
	}
	return out
}
