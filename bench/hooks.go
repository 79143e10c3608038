package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"gitlab.com/gitlab-org/gitlab-runner/executors/custom/api"

	"gitlab.com/dind-executor/dind-executor/integration/seedjob"
	"gitlab.com/dind-executor/dind-executor/stages"
)

// session is one job attempt driven hook by hook, the way GitLab Runner
// calls a custom executor (and integration/runner emulates): a fresh temp
// dir holding response.json, the protocol variables in the environment,
// cwd in that dir, stdin /dev/null, a process group of its own. The rows
// that time a single hook use it; whole jobs go through the emulator.
type session struct {
	bin, config string
	tmpDir      string
	jobID       int64
	sandboxID   string
	env         []string
}

// jobResponse is the part of the runner's job payload the driver reads,
// in the runner's field names (integration/runner/response.go has all).
type jobResponse struct {
	ID         int64        `json:"id"`
	Token      string       `json:"token"`
	JobInfo    jobInfo      `json:"job_info"`
	RunnerInfo runnerInfo   `json:"runner_info"`
	Variables  []jobVar     `json:"variables"`
	Image      jobImage     `json:"image"`
	Services   []jobImage   `json:"services"`
	Steps      []jobStepDoc `json:"steps"`
}

type jobInfo struct {
	Name            string `json:"name"`
	Stage           string `json:"stage"`
	PipelineID      int64  `json:"pipeline_id"`
	ProjectID       int64  `json:"project_id"`
	ProjectName     string `json:"project_name"`
	ProjectFullPath string `json:"project_full_path"`
}

type runnerInfo struct {
	Timeout int `json:"timeout"`
}

type jobVar struct {
	Key    string `json:"key"`
	Value  string `json:"value"`
	Public bool   `json:"public"`
}

type jobImage struct {
	Name  string `json:"name"`
	Alias string `json:"alias,omitempty"`
}

type jobStepDoc struct {
	Name   string   `json:"name"`
	Script []string `json:"script"`
}

// newSession makes the attempt's temp dir and job payload. The project
// path holds the invocation's tag: every object the product makes carries
// it as a label, which is how the final sweep finds what this invocation
// made.
func newSession(b *bencher, jobID int64, name string) (*session, error) {
	dir, err := os.MkdirTemp(b.work, "custom-executor*")
	if err != nil {
		return nil, err
	}
	doc := jobResponse{
		ID:    jobID,
		Token: "bench-token",
		JobInfo: jobInfo{
			Name: name, Stage: "bench", PipelineID: b.runTag,
			ProjectID: b.runTag, ProjectName: "hooks", ProjectFullPath: b.projectPath("hooks"),
		},
		RunnerInfo: runnerInfo{Timeout: 3600},
		Variables:  []jobVar{{Key: "CI_JOB_ID", Value: strconv.FormatInt(jobID, 10), Public: true}},
		Image:      jobImage{Name: seedjob.JobImage},
		Services:   []jobImage{{Name: "docker:27-dind", Alias: "docker"}},
		Steps:      []jobStepDoc{{Name: "script", Script: []string{"exit 0"}}},
	}
	data, err := json.Marshal(doc)
	if err != nil {
		return nil, err
	}
	response := filepath.Join(dir, "response.json")
	if err := os.WriteFile(response, data, 0o600); err != nil {
		return nil, err
	}
	hostname, err := os.Hostname()
	if err != nil {
		return nil, err
	}
	env := append(os.Environ(),
		"TMPDIR="+dir,
		api.BuildFailureExitCodeVariable+"=1",
		api.SystemFailureExitCodeVariable+"=2",
		api.BuildCodeFileVariable+"="+filepath.Join(dir, "build_exit_code"),
		api.JobResponseFileVariable+"="+response,
		"CUSTOM_ENV_CI_JOB_ID="+strconv.FormatInt(jobID, 10),
		"CUSTOM_ENV_CI_RUNNER_VERSION=19.4.0",
		"CUSTOM_ENV_CI_RUNNER_REVISION=fc1f1862",
		"CUSTOM_ENV_CI_RUNNER_EXECUTABLE_ARCH=linux/amd64",
	)
	return &session{
		bin: b.binary, config: b.configPath, tmpDir: dir, jobID: jobID,
		sandboxID: stages.SandboxID(hostname, response), env: env,
	}, nil
}

// hookRun is one driver process, timed from just before fork to just
// after its output pipes were drained and it was reaped.
type hookRun struct {
	Start, End time.Time
	Wall       time.Duration
	MaxRSSKB   int64 // rusage ru_maxrss of the child: its peak resident set
	UserCPU    time.Duration
	SysCPU     time.Duration
	ExitCode   int
	OutBytes   int64
	Lines      []timedLine // output lines with their arrival time (when kept)
}

type timedLine struct {
	At   time.Time
	Text string
}

// outputMode says what happens to a hook's stdout.
type outputMode int

const (
	keepLines   outputMode = iota // record every line with its arrival time
	discardData                   // count bytes only (throughput)
)

// hook runs the driver with args (after --config) and stdin from stdinFile
// ("" is /dev/null, as the runner does).
func (s *session) hook(ctx context.Context, mode outputMode, args ...string) (hookRun, error) {
	return runMeasured(ctx, s.tmpDir, s.env, mode, "", s.bin, append([]string{"--config", s.config}, args...)...)
}

// runMeasured starts name with args, feeds stdinFile, drains stdout as mode
// says (stderr is always kept as lines) and returns the measurements.
func runMeasured(ctx context.Context, dir string, env []string, mode outputMode, stdinFile, name string, args ...string) (hookRun, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir, cmd.Env = dir, env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if stdinFile != "" {
		f, err := os.Open(stdinFile)
		if err != nil {
			return hookRun{}, err
		}
		defer f.Close()
		cmd.Stdin = f
	}
	lines := &lineRecorder{}
	cmd.Stderr = lines
	outR, outW, err := os.Pipe()
	if err != nil {
		return hookRun{}, err
	}
	cmd.Stdout = outW

	var res hookRun
	drained := make(chan int64, 1)
	res.Start = time.Now()
	if err := cmd.Start(); err != nil {
		outR.Close()
		outW.Close()
		return hookRun{}, fmt.Errorf("start %s: %w", name, err)
	}
	outW.Close()
	go func() {
		defer outR.Close()
		if mode == keepLines {
			n, _ := io.Copy(lines, outR)
			drained <- n
			return
		}
		drained <- drain(outR)
	}()
	res.OutBytes = <-drained
	waitErr := cmd.Wait()
	res.End = time.Now()
	res.Wall = res.End.Sub(res.Start)
	res.Lines = lines.lines()
	if st := cmd.ProcessState; st != nil {
		res.ExitCode = st.ExitCode()
		if ru, ok := st.SysUsage().(*syscall.Rusage); ok {
			res.MaxRSSKB = ru.Maxrss
			res.UserCPU = time.Duration(ru.Utime.Nano())
			res.SysCPU = time.Duration(ru.Stime.Nano())
		}
	}
	var exitErr *exec.ExitError
	if waitErr != nil && !errors.As(waitErr, &exitErr) {
		return res, fmt.Errorf("%s: %w", name, waitErr)
	}
	if res.ExitCode != 0 {
		return res, fmt.Errorf("%s %v exited with %d:\n%s", filepath.Base(name), args, res.ExitCode, res.text(20))
	}
	return res, nil
}

// text is the last n output lines, for error messages.
func (r hookRun) text(n int) string {
	var buf bytes.Buffer
	lines := r.Lines
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	for _, l := range lines {
		buf.WriteString("  " + l.Text + "\n")
	}
	return buf.String()
}

// lineAt is when the first line containing sub arrived.
func (r hookRun) lineAt(sub string) (time.Time, bool) {
	for _, l := range r.Lines {
		if bytes.Contains([]byte(l.Text), []byte(sub)) {
			return l.At, true
		}
	}
	return time.Time{}, false
}

// lineRecorder splits what is written into lines stamped with the time
// their end arrived. Both of a hook's streams may write to it at once.
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

// writeScript stores a stage script in the attempt's temp dir, where the
// runner keeps its scripts.
func (s *session) writeScript(name, body string) (string, error) {
	dir, err := os.MkdirTemp(s.tmpDir, "script")
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, name)
	return path, os.WriteFile(path, []byte(body), 0o700)
}

// drain reads r to its end in large reads and counts the bytes, so that
// the sink is never what limits a throughput figure (io.Discard's own
// ReadFrom would read in 8 KiB pieces).
func drain(r io.Reader) int64 {
	buf := make([]byte, 1<<20)
	var n int64
	for {
		k, err := r.Read(buf)
		n += int64(k)
		if err != nil {
			return n
		}
	}
}
