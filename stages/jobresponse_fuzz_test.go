package stages

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// FuzzParseJobResponse checks that a job response, whatever its bytes,
// never panics the parser, that every error has text to show, and that
// whatever it accepts has a usable job id and timeout. The seed corpus is
// in testdata/fuzz/FuzzParseJobResponse and below.
func FuzzParseJobResponse(f *testing.F) {
	full := `{"id":4711,"token":"t","job_info":{"name":"b","stage":"test","project_id":42,"project_full_path":"g/a","pipeline_id":900},` +
		`"runner_info":{"timeout":60},"image":{"name":"docker:27","entrypoint":[""],"pull_policy":["if-not-present"]},` +
		`"services":[{"name":"docker:27-dind","alias":"docker"}],"variables":[{"key":"A","value":"b","masked":true}],` +
		`"credentials":[{"type":"registry","url":"r.example.com","username":"u","password":"p"}],"steps":[{"name":"script","script":["true"]}]}`
	for _, s := range []string{
		full, full[:len(full)/2], `{"id": 7}`, ``, ` `, `null`, `[]`, `{"id":-1}`, `{"id":0}`, `{"id":1e3}`, `{"id":9223372036854775808}`,
		`{"id":"7"}`, `{"id":7,"job_info":[]}`, `{"id":7,"runner_info":{"timeout":-5}}`, `{"id":7,"variables":{"a":1}}`,
		`{"id":7,"services":[null]}`, "\xff\xfe\x00", `{"id":7}` + strings.Repeat(" ", 1000) + `x`,
		`{"id":7,"image":{"name":"` + strings.Repeat("a", 4096) + `"}}`, strings.Repeat(`[`, 10000),
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		job, err := ParseJobResponse(data)
		if err != nil {
			if strings.TrimSpace(err.Error()) == "" {
				t.Fatalf("ParseJobResponse(%q) returned an error with no text", data)
			}
			if job != nil {
				t.Fatalf("ParseJobResponse(%q) returned a job with its error", data)
			}
			return
		}
		if job == nil || job.ID == nil || *job.ID <= 0 {
			t.Fatalf("ParseJobResponse(%q) accepted a job without a positive id: %+v", data, job)
		}
		if job.TimeoutSeconds() <= 0 {
			t.Fatalf("ParseJobResponse(%q) gave timeout %d", data, job.TimeoutSeconds())
		}
		again, err := ParseJobResponse(data)
		if err != nil || !reflect.DeepEqual(job, again) {
			t.Fatalf("ParseJobResponse(%q) is not deterministic", data)
		}
	})
}

// Files no runner writes: each gives an error that says what is wrong.
func TestReadJobResponseBadFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	huge := filepath.Join(dir, "huge.json")
	f, err := os.Create(huge)
	if err != nil {
		t.Fatal(err)
	}
	// Sparse: 65 MiB of zeros without writing them.
	if err := f.Truncate(maxJobResponseSize + 1<<20); err != nil {
		t.Fatal(err)
	}
	f.Close()
	cases := []struct {
		name, path, want string
	}{
		{"larger than any job response", huge, "larger than 64 MiB"},
		{"binary garbage", write("garbage.json", []byte("\x7fELF\x02\x01\x01\x00\x00")), "malformed JSON"},
		{"truncated", write("truncated.json", []byte(`{"id": 12, "variables": [{"key": "A", "val`)), "malformed JSON"},
		{"a directory", dir, "read job response"},
		{"8 MiB of nesting", write("nested.json", bytes.Repeat([]byte("["), 8<<20)), "malformed JSON"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadJobResponse(tc.path)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want one containing %q", err, tc.want)
			}
		})
	}
}
