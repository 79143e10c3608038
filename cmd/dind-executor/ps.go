package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"gitlab.com/dind-executor/dind-executor/executor"
)

type psOptions struct {
	json    bool
	engines engineColumn
}

func newPsCommand(load func() (*operatorEnv, error), streams Streams) *cobra.Command {
	opts := &psOptions{}
	cmd := &cobra.Command{
		Use:   "ps",
		Short: "list the sandboxes on the Engine now: job, project, age and the state of each container",
		Args:  cobra.NoArgs,
		RunE: runWithEngine(load, func(ctx context.Context, env *operatorEnv, engine *executor.Engine) error {
			opts.engines = env.severalEngines()
			return runPs(ctx, engine, streams.Out, opts)
		}),
	}
	cmd.Flags().BoolVar(&opts.json, "json", false, "print a JSON array instead of a table")
	return cmd
}

// psEntry is one sandbox in `ps --json`.
type psEntry struct {
	Sandbox     string        `json:"sandbox"`
	Engine      string        `json:"engine"`
	JobID       int64         `json:"job_id"`
	JobName     string        `json:"job_name"`
	ProjectID   int64         `json:"project_id"`
	ProjectPath string        `json:"project_path"`
	PipelineID  int64         `json:"pipeline_id"`
	RunnerHost  string        `json:"runner_host"`
	Created     time.Time     `json:"created"`
	AgeSeconds  int64         `json:"age_seconds"`
	Containers  []psContainer `json:"containers"`
	Volumes     []string      `json:"volumes"`
	Networks    []string      `json:"networks"`
}

type psContainer struct {
	Role   string `json:"role"`
	Name   string `json:"name"`
	Image  string `json:"image"`
	State  string `json:"state"`
	Status string `json:"status"`
}

func runPs(ctx context.Context, engine *executor.Engine, out io.Writer, opts *psOptions) error {
	sandboxes, err := engine.Sandboxes(ctx)
	if err != nil {
		return err
	}
	now := time.Now()
	entries := make([]psEntry, 0, len(sandboxes))
	for _, sb := range sandboxes {
		entries = append(entries, newPsEntry(sb, now))
	}
	if opts.json {
		return writeJSON(out, entries)
	}
	if len(entries) == 0 {
		_, err := fmt.Fprintln(out, "no sandboxes on the Engine")
		return err
	}
	return writePsTable(out, entries, opts.engines)
}

func newPsEntry(sb executor.SandboxInfo, now time.Time) psEntry {
	id := sb.Identity
	e := psEntry{
		Sandbox: string(id.SandboxID), Engine: sb.Engine, JobID: id.JobID, JobName: id.JobName, ProjectID: id.ProjectID, ProjectPath: id.ProjectPath,
		PipelineID: id.PipelineID, RunnerHost: id.RunnerHost, Created: sb.Created.UTC(), AgeSeconds: int64(sb.Age(now).Seconds()),
		Containers: []psContainer{}, Volumes: nonNilStrings(sb.Volumes), Networks: nonNilStrings(sb.Networks),
	}
	for _, c := range sb.Containers {
		e.Containers = append(e.Containers, psContainer{Role: string(c.Role), Name: c.Name, Image: c.Image, State: c.State, Status: c.Status})
	}
	return e
}

func writePsTable(out io.Writer, entries []psEntry, engines engineColumn) error {
	t := newTable(out, engines.header("SANDBOX", "JOB", "PROJECT", "PIPELINE", "AGE", "CONTAINERS")...)
	for _, e := range entries {
		var states []string
		for _, c := range e.Containers {
			states = append(states, c.Role+"="+c.State)
		}
		if len(states) == 0 {
			states = []string{fmt.Sprintf("none (%d volumes, %d networks)", len(e.Volumes), len(e.Networks))}
		}
		t.row(engines.cells(e.Engine, e.Sandbox, fmt.Sprintf("%d %s", e.JobID, e.JobName), project(e.ProjectID, e.ProjectPath),
			e.PipelineID, time.Duration(e.AgeSeconds)*time.Second, strings.Join(states, " "))...)
	}
	return t.flush()
}

func project(id int64, path string) string {
	if path == "" {
		return fmt.Sprint(id)
	}
	return fmt.Sprintf("%d %s", id, path)
}

func writeJSON(out io.Writer, v any) error {
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func nonNilStrings(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
