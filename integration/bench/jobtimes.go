package main

import (
	"regexp"
	"strconv"

	"gitlab.com/dind-executor/dind-executor/integration/runner"
)

// Builds are timed inside the job, around the command alone: the job's
// own stages (prepare, get_sources, ...) are other rows.

// timed wraps a job command so that the job prints how long it took, as
// "BENCH-TIME <kind> <µs>".
func timed(kind, command string) string {
	return `t0=$(date +%s%N); ` + command + `; echo "BENCH-TIME ` + kind + ` $(( ($(date +%s%N) - t0) / 1000 ))"`
}

// quiet runs command with its output in a file that the job log shows only
// when it fails: a build's output would swamp the log the bench parses.
func quiet(name, command string) string {
	log := "/tmp/bench-" + name + ".log"
	return `{ ` + command + `; } >` + log + ` 2>&1 || { tail -n 40 ` + log + `; exit 1; }`
}

var timedResult = regexp.MustCompile(`(?m)^BENCH-TIME (\w+) (\d+)\s*$`)

// jobTimes reads the timings a job's script step printed, in seconds.
func jobTimes(res *runner.Result) map[string]float64 {
	out := map[string]float64{}
	for _, m := range timedResult.FindAllStringSubmatch(scriptOutput(res), -1) {
		us, _ := strconv.ParseFloat(m[2], 64)
		out[m[1]] = us / 1e6
	}
	return out
}

// scriptOutput is what the job's script step printed, without colours.
func scriptOutput(res *runner.Result) string {
	if x := res.Exec(runner.StageStepScript); x != nil {
		return runner.PlainText(x.Output)
	}
	return ""
}
