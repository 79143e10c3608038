package runner

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The stage scripts the fake driver runs on the host call gitlab-runner for
// caches and artifacts. They must reach the tests' stand-in whatever the
// host has on its PATH: here a gitlab-runner that answers --version (as a
// real one does) and then fails every command with garbage, which would
// fail the upload stage and so the job.
func TestStageScriptsUseTheStandInNotTheHostsGitlabRunner(t *testing.T) {
	hostBin := t.TempDir()
	hostile := "#!/bin/sh\n[ \"$1\" = --version ] && exit 0\necho HOST-GITLAB-RUNNER-GARBAGE\nexit 3\n"
	if err := os.WriteFile(filepath.Join(hostBin, "gitlab-runner"), []byte(hostile), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", hostBin+string(os.PathListSeparator)+os.Getenv("PATH"))

	h := newHarness(t)
	h.e.RunnerURL = "http://127.0.0.1:1"
	job := basicJob()
	job.Cache = []Cache{{Key: "deps", Paths: []string{"cachedir/"}}}
	job.Artifacts = []Artifact{{Paths: []string{"out/"}}}
	res := h.run(job)
	log := PlainText(res.Log)
	if res.Outcome.Kind != OutcomeSuccess {
		t.Fatalf("outcome %v, want success\n%s", res.Outcome, log)
	}
	if strings.Contains(log, "HOST-GITLAB-RUNNER-GARBAGE") {
		t.Errorf("a stage ran the host's gitlab-runner:\n%s", log)
	}
	for _, call := range []string{
		"cache-extractor --file ../../../cache/grp/app/deps/cache.zip",
		"cache-archiver --file ../../../cache/grp/app/deps/cache.zip --timeout 10 --path cachedir/",
		"artifacts-uploader --url http://127.0.0.1:1",
	} {
		if !strings.Contains(log, standInBanner+" "+call) {
			t.Errorf("job log lacks the stand-in's %q:\n%s", call, log)
		}
	}
}
