package runner

import (
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// The sampled peak is the child's own, not its parent's: a parent holding
// 200 MiB starts a child that touches 64 MiB; ru_maxrss would say 200.
func TestSampledPeakIsTheChildsOwnMemory(t *testing.T) {
	if os.Getenv("HWM_CHILD") == "1" {
		b := make([]byte, 64<<20)
		for i := range b {
			b[i] = 1
		}
		time.Sleep(200 * time.Millisecond)
		return
	}
	ballast := make([]byte, 200<<20)
	for i := range ballast {
		ballast[i] = 1
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestSampledPeakIsTheChildsOwnMemory$")
	cmd.Env = append(os.Environ(), "HWM_CHILD=1")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	peak := sampleHWM(cmd.Process.Pid)
	err := cmd.Wait()
	peak.stop()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("ru_maxrss %d KiB, sampled %d KiB", cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss, peak.kb())
	if kb := peak.kb(); kb < 60<<10 || kb > 150<<10 {
		t.Fatalf("sampled peak %d KiB, want the child's ~64 MiB (not the parent's 200 MiB)", kb)
	}
	if ballast[len(ballast)-1] != 1 {
		t.Fatal("ballast lost")
	}
}
