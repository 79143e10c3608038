package audit

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func line(t *testing.T, r Record) string {
	t.Helper()
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b) + "\n"
}

func TestReadSkipsWhatIsNotARecord(t *testing.T) {
	good := Record{Time: time.Unix(100, 0).UTC(), Event: EventSandboxCreated, Sandbox: "s1", Job: JobRef{ID: 7}}
	cases := []struct {
		name        string
		trail       string
		wantRecords int
		wantSkipped int
	}{
		{"empty", "", 0, 0},
		{"one record", line(t, good), 1, 0},
		{"blank lines are not counted", "\n\n" + line(t, good) + "  \n", 1, 0},
		{"torn last line", line(t, good) + `{"time":"2024-01-01T00:00:00Z","ev`, 1, 1},
		{"garbage between records", line(t, good) + "not json\n\x00\xff\n" + line(t, good), 2, 2},
		{"JSON that is not a record", `{"a":1}` + "\n[1,2]\n" + line(t, good), 1, 2},
		{"line longer than a record may be", strings.Repeat("x", MaxRecordBytes+10) + "\n" + line(t, good), 1, 1},
		{"torn line longer than a record may be", line(t, good) + strings.Repeat("y", 3*MaxRecordBytes), 1, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Read(context.Background(), strings.NewReader(tc.trail), Query{})
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Records) != tc.wantRecords || res.Skipped != tc.wantSkipped {
				t.Errorf("records %d skipped %d, want %d and %d", len(res.Records), res.Skipped, tc.wantRecords, tc.wantSkipped)
			}
		})
	}
}

func TestQuery(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	records := []Record{
		{Time: t0, Event: EventSandboxCreated, Sandbox: "a", Job: JobRef{ID: 1, ProjectID: 10, ProjectPath: "g/app"}},
		{Time: t0.Add(time.Hour), Event: EventStageFinished, Sandbox: "a", Job: JobRef{ID: 1, ProjectID: 10, ProjectPath: "g/app"}},
		{Time: t0.Add(2 * time.Hour), Event: EventSandboxCreated, Sandbox: "b", Job: JobRef{ID: 2, ProjectID: 20, ProjectPath: "g/other"}},
		{Time: t0.Add(3 * time.Hour), Event: EventSandboxCreated, Sandbox: "c", Job: JobRef{ID: 1, ProjectID: 20, ProjectPath: "g/other"}},
	}
	var trail strings.Builder
	for _, r := range records {
		trail.WriteString(line(t, r))
	}
	cases := []struct {
		name string
		q    Query
		want []string // sandbox/event of the selected records, in order
	}{
		{"everything", Query{}, []string{"a/sandbox.created", "a/stage.finished", "b/sandbox.created", "c/sandbox.created"}},
		{"job 1, from two runners", Query{JobID: 1}, []string{"a/sandbox.created", "a/stage.finished", "c/sandbox.created"}},
		{"project by id", Query{Project: "20"}, []string{"b/sandbox.created", "c/sandbox.created"}},
		{"project by path", Query{Project: "g/app"}, []string{"a/sandbox.created", "a/stage.finished"}},
		{"since is inclusive", Query{Since: t0.Add(2 * time.Hour)}, []string{"b/sandbox.created", "c/sandbox.created"}},
		{"job and project", Query{JobID: 1, Project: "g/other"}, []string{"c/sandbox.created"}},
		{"sandbox", Query{Sandbox: "a"}, []string{"a/sandbox.created", "a/stage.finished"}},
		{"no match", Query{JobID: 99}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Read(context.Background(), strings.NewReader(trail.String()), tc.q)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range res.Records {
				got = append(got, r.Sandbox+"/"+string(r.Event))
			}
			if strings.Join(got, " ") != strings.Join(tc.want, " ") {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestReadFileMissingIsEmpty(t *testing.T) {
	res, err := ReadFile(context.Background(), filepath.Join(t.TempDir(), "none.jsonl"), Query{})
	if err != nil || len(res.Records) != 0 {
		t.Fatalf("ReadFile of a missing trail = %+v, %v; want empty, nil", res, err)
	}
}

// A record round-trips through the writer and reader unchanged.
func TestRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	want := Record{
		Time: time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC), Event: EventSandboxProduced, Sandbox: "0123456789abcdef",
		Job: JobRef{ID: 4711, Name: "build", ProjectID: 42, ProjectPath: "g/a", PipelineID: 900, UserLogin: "alice"},
		Produced: &Produced{
			Images:     []ProducedImage{{ID: "sha256:1", Tags: []string{"localhost:5000/app:1"}, RepoDigests: []string{"localhost:5000/app@sha256:2"}}},
			Containers: []ProducedContainer{{ID: "c1", Name: "registry", Image: "registry:local", ExitCode: 0, State: "running"}},
		},
	}
	if err := NewWriter(path).Append(want); err != nil {
		t.Fatal(err)
	}
	res, err := ReadFile(context.Background(), path, Query{JobID: 4711})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Records) != 1 {
		t.Fatalf("%d records", len(res.Records))
	}
	got, _ := json.Marshal(res.Records[0])
	exp, _ := json.Marshal(want)
	if string(got) != string(exp) {
		t.Errorf("round trip:\n got %s\nwant %s", got, exp)
	}
}
