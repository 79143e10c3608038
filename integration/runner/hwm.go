package runner

import (
	"bytes"
	"os"
	"strconv"
	"sync"
	"time"
)

// hwmInterval is how often a driver's VmHWM is read.
const hwmInterval = 5 * time.Millisecond

// hwmSampler follows one process's peak resident memory. ru_maxrss cannot
// tell it: the kernel counts in it the memory of the process that forked
// it (the emulator's, or the whole test binary's) at the moment of the
// fork, so every driver would look as large as its caller. VmHWM in
// /proc/<pid>/status is the high-water mark of the driver's own memory
// since exec.
type hwmSampler struct {
	mu   sync.Mutex
	max  int64
	done chan struct{}
	wg   sync.WaitGroup
}

func sampleHWM(pid int) *hwmSampler {
	s := &hwmSampler{done: make(chan struct{})}
	path := "/proc/" + strconv.Itoa(pid) + "/status"
	s.wg.Go(func() {
		tick := time.NewTicker(hwmInterval)
		defer tick.Stop()
		for {
			if kb, ok := readHWM(path); ok {
				s.mu.Lock()
				s.max = max(s.max, kb)
				s.mu.Unlock()
			}
			select {
			case <-s.done:
				return
			case <-tick.C:
			}
		}
	})
	return s
}

// stop ends the sampling (the process has been reaped).
func (s *hwmSampler) stop() {
	close(s.done)
	s.wg.Wait()
}

func (s *hwmSampler) kb() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.max
}

// readHWM reads the VmHWM line (KiB) of a status file.
func readHWM(path string) (int64, bool) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	_, rest, ok := bytes.Cut(data, []byte("VmHWM:"))
	if !ok {
		return 0, false
	}
	line, _, _ := bytes.Cut(rest, []byte("\n"))
	fields := bytes.Fields(line)
	if len(fields) == 0 {
		return 0, false
	}
	kb, err := strconv.ParseInt(string(fields[0]), 10, 64)
	return kb, err == nil
}
