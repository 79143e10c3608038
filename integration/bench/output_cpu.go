package main

import (
	"fmt"
	"runtime"
)

const cpuClient = "client (hook or CLI): reading the stream, writing the pipe"

// addCPU adds one run's CPU use per component, as % of one core over the
// run's wall time.
func addCPU(into map[string][]float64, r hookRun, host cpuSample) {
	wall := r.Wall.Seconds()
	into[cpuClient] = append(into[cpuClient], 100*(r.UserCPU+r.SysCPU).Seconds()/wall)
	total := (r.UserCPU + r.SysCPU).Seconds()
	for k, v := range host {
		into[k] = append(into[k], 100*v.Seconds()/wall)
		if k != cpuHost && k != cpuSteal {
			total += v.Seconds()
		}
	}
	into[cpuTotal] = append(into[cpuTotal], 100*total/wall)
}

const cpuTotal = "all of the above"

// cpuProfile says which process the output stream's CPU went to.
func cpuProfile(size int64, hook, cli map[string][]float64, hookRate, cliRate float64) Profile {
	p := Profile{
		Title:   fmt.Sprintf("CPU while %s of output streams through the run hook vs the docker CLI (%% of one core over the run's wall time; the host has %d)", sizeName(size), runtime.NumCPU()),
		Why:     "target: output ≥ 300 MB/s",
		Unit:    "%core",
		Columns: []string{"run hook", "docker CLI"},
	}
	for _, name := range []string{cpuClient, cpuDockerd, cpuShim, cpuContainer, cpuContainerd, cpuTotal, cpuHost, cpuSteal} {
		if len(hook[name]) == 0 {
			continue
		}
		p.Parts = append(p.Parts, Part{Name: name, Values: []float64{medianOf(hook[name]), medianOf(cli[name])}, N: len(hook[name])})
	}
	cores := float64(100 * runtime.NumCPU())
	total, host := medianOf(hook[cpuTotal]), medianOf(hook[cpuHost])
	p.Reading = fmt.Sprintf("The stream goes bash → pipe → containerd-shim → FIFO → dockerd → HTTP → client; every hop copies it once. "+
		"With the hook, these processes use %.0f%% of one core, the hook itself %.0f%%; the docker CLI on the same path gets %.0f MB/s to the hook's %.0f MB/s. "+
		"The whole host was busy %.0f%% of its %.0f%%. ",
		total, medianOf(hook[cpuClient]), cliRate, hookRate, host, cores)
	switch {
	case host >= 0.9*cores && total < 0.75*host:
		p.Reading += "The CPUs were saturated, largely by other work on the host: the stream got what was left. On an idle host the same chain runs faster; the hook's own share stays small."
	case host >= 0.9*cores:
		p.Reading += "The CPUs were saturated by the copy chain itself: the rate is bound by CPU, mostly outside the hook (dockerd and the shim copy every byte once more)."
	default:
		p.Reading += "The CPUs were not saturated: the rate is bound by the hand-offs along the Engine's stream path (each hop waits for the previous one), which the hook cannot change."
	}
	return p
}
