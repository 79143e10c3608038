package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"gitlab.com/dind-executor/dind-executor/executor/audit"
)

type auditOptions struct {
	job     int64
	project string
	sandbox string
	since   string
	json    bool
}

func newAuditCommand(load func() (*operatorEnv, error), streams Streams) *cobra.Command {
	opts := &auditOptions{}
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "query the audit trail: what each job's sandbox was, ran, built and pushed, and what was removed",
		Args:  cobra.NoArgs,
		RunE: runWith(load, func(ctx context.Context, env *operatorEnv) error {
			q, err := opts.query(time.Now())
			if err != nil {
				return err
			}
			return runAudit(ctx, env.cfg.Audit.Path, q, opts.json, streams)
		}),
	}
	f := cmd.Flags()
	f.Int64Var(&opts.job, "job", 0, "only this job id")
	f.StringVar(&opts.project, "project", "", "only this project, by id or path (group/app)")
	f.StringVar(&opts.sandbox, "sandbox", "", "only this sandbox id")
	f.StringVar(&opts.since, "since", "", `only records since then: a duration back from now ("2h"), a date ("2026-01-31") or an RFC 3339 time`)
	f.BoolVar(&opts.json, "json", false, "print a JSON array of the records instead of a table")
	return cmd
}

func (o *auditOptions) query(now time.Time) (audit.Query, error) {
	q := audit.Query{JobID: o.job, Project: o.project, Sandbox: o.sandbox}
	if o.since != "" {
		since, err := parseSince(o.since, now)
		if err != nil {
			return q, err
		}
		q.Since = since
	}
	return q, nil
}

// parseSince reads --since as a duration back from now, a date (UTC) or an
// RFC 3339 time.
func parseSince(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf(`--since %q: use a duration ("2h", "30m"), a date ("2026-01-31") or an RFC 3339 time ("2026-01-31T12:00:00Z")`, s)
}

func runAudit(ctx context.Context, path string, q audit.Query, asJSON bool, streams Streams) error {
	res, err := audit.ReadFile(ctx, path, q)
	if err != nil {
		return err
	}
	if res.Skipped > 0 {
		fmt.Fprintf(streams.Err, "WARNING: %d lines of %s are not records (torn by a crash or garbled) and were skipped\n", res.Skipped, path)
	}
	if asJSON {
		records := res.Records
		if records == nil {
			records = []audit.Record{}
		}
		return writeJSON(streams.Out, records)
	}
	return writeAuditTable(streams.Out, res.Records)
}

func writeAuditTable(out io.Writer, records []audit.Record) error {
	t := newTable(out, "TIME", "EVENT", "SANDBOX", "JOB", "PROJECT", "DETAIL")
	for _, r := range records {
		detail := auditDetail(r)
		if r.Error != "" {
			detail = strings.TrimSpace(detail + " error: " + oneLine(r.Error))
		}
		t.row(r.Time.UTC().Format(time.RFC3339), r.Event, r.Sandbox, r.Job.ID,
			project(r.Job.ProjectID, r.Job.ProjectPath), detail)
	}
	return t.flush()
}

// auditDetail is one line saying what a record holds.
func auditDetail(r audit.Record) string {
	switch {
	case r.Created != nil:
		c := r.Created
		var images []string
		for _, img := range c.Images {
			images = append(images, fmt.Sprintf("%s=%s (%s)", img.Role, img.Ref, shortID(img.ID)))
		}
		return fmt.Sprintf("daemon %s; user %s; images %s; limits cpus=%s memory=%d pids=%d; network %s mtu %d; CA %s valid %s..%s",
			c.DaemonSecurity, orDash(r.Job.UserLogin), strings.Join(images, " "), cpus(c.Limits.NanoCPUs), c.Limits.MemoryBytes, c.Limits.Pids,
			c.Network, c.MTU, shortID(c.CA.Fingerprint), c.CA.NotBefore.UTC().Format(time.RFC3339), c.CA.NotAfter.UTC().Format(time.RFC3339))
	case r.Stage != nil:
		s := r.Stage
		canceled := ""
		if s.Canceled {
			canceled = ", canceled"
		}
		return fmt.Sprintf("%s in %s: exit %d, %s, %d bytes of output%s", s.Name, s.Container, s.ExitCode,
			time.Duration(s.DurationMS)*time.Millisecond, s.OutputBytes, canceled)
	case r.Produced != nil:
		var parts []string
		for _, img := range r.Produced.Images {
			name := strings.Join(img.Tags, ",")
			if name == "" {
				name = "untagged"
			}
			part := fmt.Sprintf("image %s %s", shortID(img.ID), name)
			if len(img.RepoDigests) > 0 {
				part += " pushed " + strings.Join(img.RepoDigests, ",")
			}
			parts = append(parts, part)
		}
		for _, c := range r.Produced.Containers {
			parts = append(parts, fmt.Sprintf("ran %s (%s, exit %d)", c.Image, c.State, c.ExitCode))
		}
		if r.Produced.Truncated {
			parts = append(parts, "(list truncated)")
		}
		if len(parts) == 0 {
			return "nothing"
		}
		return strings.Join(parts, "; ")
	case r.Destroyed != nil:
		d := r.Destroyed
		reason := ""
		if d.Reason != "" {
			reason = " (" + d.Reason + ")"
		}
		return fmt.Sprintf("by %s%s: %d containers, %d volumes, %d networks; lived %s", d.By, reason,
			len(d.Containers), len(d.Volumes), len(d.Networks), (time.Duration(d.LivedMS) * time.Millisecond).Round(time.Second))
	}
	return ""
}

func shortID(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

func cpus(nano int64) string {
	if nano == 0 {
		return "0"
	}
	return fmt.Sprintf("%g", float64(nano)/1e9)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
