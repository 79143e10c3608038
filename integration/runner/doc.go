// Package runner emulates GitLab Runner's custom executor so that tests can
// drive the built dind-executor binary exactly the way a real runner does:
// the same argv, working directory, environment, JOB_RESPONSE_FILE, generated
// bash stage scripts, exit-code handling, prepare retries, cancellation and
// signal escalation, as GitLab Runner 19.4 does them (its executors/custom
// package), with stage scripts in the shape of runner 15.11's (pinned by
// script_reference_test.go).
//
// Typical use:
//
//	e := &runner.Emulator{Binary: bin, Args: []string{"--config", cfg}, Log: os.Stdout}
//	res, err := e.Run(ctx, runner.Job{Image: runner.Image{Name: "debian"}, Script: []string{"echo hi"}})
//	// res.Outcome, res.Execs, res.Log, res.TempDir …
package runner
