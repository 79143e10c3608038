// Command fakedriver is a stand-in custom-executor driver for the runner
// emulator's tests. Every call appends a JSON record (argv, env, cwd, …) to
// $FAKE_RECORD_DIR; behaviour is chosen by job variables (CUSTOM_ENV_FAKE_*)
// or, for config_exec, by the process environment (FAKE_*). The run hook
// executes the stage script with bash on the host, like the runner's own
// test driver.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Record is what one call saw. The emulator tests decode the same shape.
type Record struct {
	Hook            string   `json:"hook"`
	Args            []string `json:"args"`
	Cwd             string   `json:"cwd"`
	Env             []string `json:"env"`
	PID             int      `json:"pid"`
	PGID            int      `json:"pgid"`
	Stdin           string   `json:"stdin"`
	Stage           string   `json:"stage,omitempty"`
	ScriptPath      string   `json:"script_path,omitempty"`
	Script          string   `json:"script,omitempty"`
	ScriptMode      uint32   `json:"script_mode,omitempty"`
	JobResponse     string   `json:"job_response,omitempty"`
	JobResponseMode uint32   `json:"job_response_mode,omitempty"`
	ChildPID        int      `json:"child_pid,omitempty"`
	GotSIGTERM      bool     `json:"got_sigterm"`
	Finished        bool     `json:"finished"`
	ExitCode        int      `json:"exit_code"`
}

var (
	rec     Record
	recFile string
)

func save() {
	dir := os.Getenv("FAKE_RECORD_DIR")
	if dir == "" {
		return
	}
	if recFile == "" {
		recFile = filepath.Join(dir, fmt.Sprintf("%020d-%d.json", time.Now().UnixNano(), os.Getpid()))
	}
	data, _ := json.MarshalIndent(rec, "", " ")
	_ = os.WriteFile(recFile+".tmp", data, 0o644)
	_ = os.Rename(recFile+".tmp", recFile)
}

func exit(code int) {
	rec.Finished, rec.ExitCode = true, code
	save()
	os.Exit(code)
}

func job(key string) string { return os.Getenv("CUSTOM_ENV_FAKE_" + key) }

func atoiOr(s string, def int) int {
	if n, err := strconv.Atoi(s); err == nil {
		return n
	}
	return def
}

func main() {
	rec.Args = os.Args
	rec.Cwd, _ = os.Getwd()
	rec.Env = os.Environ()
	rec.PID = os.Getpid()
	rec.PGID = syscall.Getpgrp()
	rec.Stdin, _ = os.Readlink("/proc/self/fd/0")
	if f := os.Getenv("JOB_RESPONSE_FILE"); f != "" {
		if data, err := os.ReadFile(f); err == nil {
			rec.JobResponse = string(data)
		}
		if st, err := os.Stat(f); err == nil {
			rec.JobResponseMode = uint32(st.Mode().Perm())
		}
	}
	// The hook is the first of config/prepare/run/cleanup after any prefix args.
	var rest []string
	for i, a := range os.Args[1:] {
		if a == "config" || a == "prepare" || a == "run" || a == "cleanup" {
			rec.Hook, rest = a, os.Args[i+2:]
			break
		}
	}
	save()

	switch rec.Hook {
	case "config":
		config()
	case "prepare":
		prepare()
	case "run":
		if len(rest) != 2 {
			fmt.Fprintln(os.Stderr, "run needs <script> <stage>")
			exit(2)
		}
		run(rest[0], rest[1])
	case "cleanup":
		fmt.Println("fake cleanup stdout")
		fmt.Fprintln(os.Stderr, "fake cleanup stderr")
		exit(atoiOr(job("CLEANUP_EXIT"), 0))
	default:
		fmt.Fprintln(os.Stderr, "unknown hook")
		exit(2)
	}
}

func config() {
	fmt.Fprintln(os.Stderr, "fake config stderr")
	if out, ok := os.LookupEnv("FAKE_CONFIG_JSON"); ok {
		fmt.Print(out)
	} else {
		root := os.Getenv("FAKE_ROOT")
		out, _ := json.Marshal(map[string]any{
			"builds_dir": filepath.Join(root, "builds"),
			"cache_dir":  filepath.Join(root, "cache"),
			"hostname":   "fake-host",
			"driver":     map[string]string{"name": "fake", "version": "v0"},
			"job_env":    map[string]string{"FAKE_JOB_ENV": "from-config"},
		})
		fmt.Print(string(out))
	}
	exit(atoiOr(job("CONFIG_EXIT"), 0))
}

func prepare() {
	var resp struct {
		ID      int64 `json:"id"`
		JobInfo struct {
			Name string `json:"name"`
		} `json:"job_info"`
	}
	_ = json.Unmarshal([]byte(rec.JobResponse), &resp)
	fmt.Printf("fake prepare for job %d %s\n", resp.ID, resp.JobInfo.Name)

	code := atoiOr(job("PREPARE_EXIT"), 0)
	if times := job("PREPARE_FAIL_TIMES"); times != "" && countPrepares() > atoiOr(times, 0) {
		code = 0 // failed often enough
	}
	if code != 0 {
		fmt.Fprintf(os.Stderr, "fake prepare failing with %d\n", code)
	}
	exit(code)
}

// countPrepares counts prepare records so far, this one included.
func countPrepares() int {
	files, _ := filepath.Glob(filepath.Join(os.Getenv("FAKE_RECORD_DIR"), "*.json"))
	n := 0
	for _, f := range files {
		data, _ := os.ReadFile(f)
		var r Record
		if json.Unmarshal(data, &r) == nil && r.Hook == "prepare" {
			n++
		}
	}
	return n
}

func run(script, stage string) {
	rec.Stage, rec.ScriptPath = stage, script
	if data, err := os.ReadFile(script); err == nil {
		rec.Script = string(data)
	}
	if st, err := os.Stat(script); err == nil {
		rec.ScriptMode = uint32(st.Mode().Perm())
	}
	save()
	codeFile := os.Getenv("BUILD_EXIT_CODE_FILE")
	_ = os.Remove(codeFile)

	terms := make(chan os.Signal, 1)
	if job("IGNORE_TERM") == stage {
		signal.Ignore(syscall.SIGTERM)
	} else {
		signal.Notify(terms, syscall.SIGTERM)
	}

	if job("EXIT_STAGE") == stage {
		if content, ok := os.LookupEnv("CUSTOM_ENV_FAKE_EXIT_FILE"); ok {
			_ = os.WriteFile(codeFile, []byte(content), 0o644)
		} else if c := job("EXIT_CODE"); c != "" {
			_ = os.WriteFile(codeFile, []byte(c+"\n"), 0o644)
		}
		exit(atoiOr(job("DRIVER_EXIT"), 1))
	}
	if job("HANG_STAGE") == stage {
		fmt.Println("fake hanging in", stage)
		// A child in our process group (it inherits an ignored SIGTERM) shows
		// whether the kill reached the whole group.
		child := exec.Command("sleep", "3600")
		if child.Start() == nil {
			rec.ChildPID = child.Process.Pid
			save()
		}
		select {
		case <-terms:
			rec.GotSIGTERM = true
			exit(1)
		case <-time.After(time.Hour): // SIGTERM ignored: only SIGKILL ends this
		}
		exit(3)
	}

	cmd := exec.Command("bash", script)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "cannot start bash:", err)
		exit(2)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-terms:
		rec.GotSIGTERM = true
		save()
		err = <-done // bash is in our process group and got the same SIGTERM
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() < 0 && !rec.GotSIGTERM {
		// bash died of a signal; ours may still be on its way.
		select {
		case <-terms:
			rec.GotSIGTERM = true
		case <-time.After(time.Second):
		}
	}
	switch {
	case err == nil:
		exit(0)
	case errors.As(err, &ee):
		code := ee.ExitCode()
		if code < 0 {
			code = 128 + int(ee.Sys().(syscall.WaitStatus).Signal())
		}
		_ = os.WriteFile(codeFile, []byte(strings.TrimSpace(strconv.Itoa(code))+"\n"), 0o644)
		exit(1)
	default:
		exit(2)
	}
}
