// Package runner emulates GitLab Runner's custom executor so that tests can
// drive the built dind-executor binary exactly the way a real runner does:
// the same argv, working directory, environment, JOB_RESPONSE_FILE, generated
// bash stage scripts, exit-code handling, prepare retries, cancellation and
// signal escalation (see runner-protocol.md, GitLab Runner 19.4, and the
// runner 15.11 reference captures the script shape is taken from).
//
// Typical use:
//
//	e := &runner.Emulator{Binary: bin, Args: []string{"--config", cfg}, Log: os.Stdout}
//	res, err := e.Run(ctx, runner.Job{Image: runner.Image{Name: "debian"}, Script: []string{"echo hi"}})
//	// res.Outcome, res.Execs, res.Log, res.TempDir …
package runner
