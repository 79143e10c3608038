package main

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// meminfo reads the named /proc/meminfo fields, in KiB.
func meminfo(fields ...string) map[string]int64 {
	out := map[string]int64{}
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return out
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		key, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		for _, want := range fields {
			if key == want {
				v, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
				out[key] = v
			}
		}
	}
	return out
}

func memTotalKB() int64 { return meminfo("MemTotal")["MemTotal"] }

// usedMemoryKB is the host's used memory as free(1) counts it: total
// minus available.
func usedMemoryKB() int64 {
	m := meminfo("MemTotal", "MemAvailable")
	return m["MemTotal"] - m["MemAvailable"]
}

// memSampler samples usedMemoryKB until stopped and keeps the peak.
type memSampler struct {
	before int64
	peak   int64
	stop   chan struct{}
	wg     sync.WaitGroup
}

func startMemSampler(every time.Duration) *memSampler {
	s := &memSampler{before: usedMemoryKB(), stop: make(chan struct{})}
	s.peak = s.before
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-t.C:
				if used := usedMemoryKB(); used > s.peak {
					s.peak = used
				}
			}
		}
	}()
	return s
}

// finish stops sampling and returns the peak increase over the start, in KiB.
func (s *memSampler) finish() int64 {
	close(s.stop)
	s.wg.Wait()
	return s.peak - s.before
}
