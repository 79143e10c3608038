package runner

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// runScript writes a generated script and runs it with bash, like a driver.
func runScript(t *testing.T, script string) (string, int) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "script")
	if err := os.WriteFile(file, []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bash", file)
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return string(out), code
}

func userScriptInfo(t *testing.T, style ScriptStyle, job Job) scriptInfo {
	t.Helper()
	pd := filepath.Join(t.TempDir(), "builds", "grp", "app")
	if err := os.MkdirAll(pd, 0o755); err != nil {
		t.Fatal(err)
	}
	e := &Emulator{ScriptStyle: style}
	job = job.withDefaults()
	st := buildState{buildsDir: filepath.Dir(filepath.Dir(pd)), projectDir: pd, status: "running"}
	return scriptInfo{job: job, vars: e.allVariables(job, st, job.Image.Name), st: st, style: style}
}

func TestUserScriptRunsInBash(t *testing.T) {
	tricky := "it's \"quoted\" $HOME `id` \\ back\nslash é\ttab"
	job := Job{
		Variables: []Variable{
			Var("JOB_VAR", "with 'quotes' and $dollar"),
			{Key: "RAW_VAR", Value: "$VARIABLE$WITH$DOLLARS$$", Public: true, Raw: true},
			{Key: "TRICKY", Value: tricky, Public: true, Raw: true},
			{Key: "FILE_VAR", Value: "file content\nline 2", File: true},
			Var("REF_FILE", "path=$FILE_VAR"),
		},
		BeforeScript: []string{"echo before"},
		Script: []string{
			`echo "job var=$JOB_VAR"`,
			`printf 'raw=%s\n' "$RAW_VAR"`,
			`printf 'tricky=%s|\n' "$TRICKY"`,
			`printf 'file=%s|\n' "$(cat "$FILE_VAR")"`,
			`echo "ref=$REF_FILE"`,
			`echo "pwd=$(pwd)"`,
			"echo one &&\n echo two",
		},
	}
	for _, style := range []ScriptStyle{StyleRunner15, StyleRunner19} {
		t.Run(map[ScriptStyle]string{StyleRunner15: "runner15", StyleRunner19: "runner19"}[style], func(t *testing.T) {
			info := userScriptInfo(t, style, job)
			script, err := generateScript(StageStepScript, info)
			if err != nil {
				t.Fatal(err)
			}
			out, code := runScript(t, script)
			if code != 0 {
				t.Fatalf("exit %d:\n%s", code, out)
			}
			pd := info.st.projectDir
			for _, want := range []string{
				"\x1b[32;1m$ echo before\x1b[0;m\nbefore\n",
				"\x1b[32;1m$ echo \"job var=$JOB_VAR\"\x1b[0;m\njob var=with 'quotes' and \n",
				"raw=$VARIABLE$WITH$DOLLARS$$\n",
				"tricky=" + tricky + "|\n",
				"file=file content\nline 2|\n",
				"ref=path=" + pd + ".tmp/FILE_VAR\n",
				"pwd=" + pd + "\n",
				"$ echo one && # collapsed multi-line command",
				"one\ntwo\n",
			} {
				if !strings.Contains(out, want) {
					t.Errorf("output lacks %q:\n%s", want, out)
				}
			}
		})
	}
}

func TestUserScriptStopsAtFirstFailure(t *testing.T) {
	info := userScriptInfo(t, StyleRunner15, Job{Script: []string{"echo about to fail", "exit 42", "echo not reached"}})
	script, err := generateScript(StageStepScript, info)
	if err != nil {
		t.Fatal(err)
	}
	out, code := runScript(t, script)
	if code != 42 {
		t.Errorf("exit code %d, want 42", code)
	}
	if !strings.Contains(out, "about to fail") || strings.Contains(out, "\nnot reached") {
		t.Errorf("unexpected output:\n%s", out)
	}

	// pipefail: a failing command anywhere in a pipeline fails the script.
	info = userScriptInfo(t, StyleRunner15, Job{Script: []string{"false || echo handled", "false | true", "echo not reached"}})
	script, _ = generateScript(StageStepScript, info)
	out, code = runScript(t, script)
	if code != 1 || !strings.Contains(out, "\nhandled\n") || strings.Contains(out, "\nnot reached") {
		t.Errorf("pipefail: code %d, output:\n%s", code, out)
	}
}

func TestScriptStyles(t *testing.T) {
	info := userScriptInfo(t, StyleRunner19, Job{Script: []string{"echo hi"}})
	s19, _ := generateScript(StageStepScript, info)
	info.style = StyleRunner15
	s15, _ := generateScript(StageStepScript, info)
	for _, c := range []struct {
		script, want string
	}{
		{s19, "#!/usr/bin/env bash\n\ntrap exit 1 TERM\n\n"},
		{s19, "\n(trap exit 1 TERM; eval $'export FF_"},
		{s19, "'\x29 < /dev/null\nexit 0\n"},
		{s15, "\nset +o noclobber\n: | eval $'export FF_"},
		{s15, "'\nexit 0\n"},
	} {
		if !strings.Contains(c.script, c.want) {
			t.Errorf("script lacks %q:\n%s", c.want, c.script)
		}
	}
}

func TestSkippedStages(t *testing.T) {
	info := userScriptInfo(t, StyleRunner15, Job{Script: []string{"true"}})
	for _, stage := range []string{StageRestoreCache, StageArchiveCache, StageArchiveCacheOnFailure,
		StageAfterScript, StageDownloadArtifacts, StageUploadArtifactsOnSuccess, "step_release"} {
		if _, err := generateScript(stage, info); err != errSkipStage {
			t.Errorf("%s: err = %v, want errSkipStage", stage, err)
		}
	}
	// With a runner URL and artifacts, the upload stage exists.
	info.runnerURL = "https://gitlab.example.com"
	info.job.Artifacts = []Artifact{{Paths: []string{"out/"}, When: "always"}}
	for _, stage := range []string{StageUploadArtifactsOnSuccess, StageUploadArtifactsOnFailure} {
		s, err := generateScript(stage, info)
		if err != nil || !strings.Contains(s, `artifacts-uploader --url $\'https://gitlab.example.com\'`) ||
			!strings.Contains(s, "--path out/") {
			t.Errorf("%s: err %v, script:\n%s", stage, err, s)
		}
	}
}
