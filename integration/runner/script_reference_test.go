package runner

import (
	"strings"
	"testing"
)

// referenceJob is the "build-image" job of the runner 15.11 reference
// captures (gitlab-runner exec: project dir /builds/project-0, cache dir
// /cache, hostname "sandbox" from config_exec).
func referenceJob() Job {
	return Job{
		ID: 1, Name: "build-image", Stage: "test", ProjectPath: "project-0",
		RepoURL: "/srv/git/project", Ref: "master", GitStrategy: "clone",
		SHA:       "2912ef9ede309acd88a37b8306a91494ce1452fc",
		BeforeSHA: "f34bd7b21c7a7829edfb279005e32cd762b50700",
		Timeout:   1800,
		Image:     Image{Name: "docker:26-cli", Entrypoint: []string{""}},
		Services:  []Image{{Name: "docker:26-dind", Alias: "docker", Command: []string{"--mtu=1400"}}},
		Variables: []Variable{Var("GLOBAL_VAR", "global value"), Var("DOCKER_TLS_CERTDIR", "/certs"),
			Var("JOB_VAR", "with 'quotes' and $dollar")},
		BeforeScript: []string{"echo before"},
		Script:       []string{"mkdir -p cachedir out && echo built > out/app.txt", `echo "job var=$JOB_VAR global=$GLOBAL_VAR"`},
		AfterScript:  []string{"echo after"},
		Cache:        []Cache{{Key: "deps", Paths: []string{"cachedir/"}}},
		Artifacts:    []Artifact{{Paths: []string{"out/"}}},
	}
}

func referenceInfo(t *testing.T, status string) scriptInfo {
	t.Helper()
	e := &Emulator{RunnerVersion: "development version"}
	job := referenceJob().withDefaults()
	st := buildState{buildsDir: "/builds", projectDir: "/builds/project-0", status: status}
	return scriptInfo{
		job: job, vars: e.allVariables(job, st, job.Image.Name), st: st,
		cacheDir: "/cache/project-0", hostname: "sandbox", style: StyleRunner15,
		userAgent: "gitlab-runner development version linux/amd64",
	}
}

// The reference prepare_script, byte for byte.
const referencePrepareScript = "#!/usr/bin/env bash\n\n" +
	"if set -o | grep pipefail > /dev/null; then set -o pipefail; fi; set -o errexit\n" +
	"set +o noclobber\n" +
	": | eval $'echo \"Running on $(hostname) via sandbox...\"\\n'\n" +
	"exit 0\n"

func TestPrepareScriptMatchesReference(t *testing.T) {
	got, err := generateScript(StagePrepareScript, referenceInfo(t, "running"))
	if err != nil {
		t.Fatal(err)
	}
	if got != referencePrepareScript {
		t.Errorf("prepare_script:\n got  %q\n want %q", got, referencePrepareScript)
	}
}

// The part of each reference script after the variable exports (which
// differ: runner 19.4 exports other variables than 15.11).
var referenceTails = map[string]string{
	StageGetSources: `export GIT_LFS_SKIP_SMUDGE=1\nif [ -d "/builds/project-0" ]; then\n  $\'chmod\' -R $\'u+rwX\' /builds/project-0\nfi\n$\'rm\' -r -f /builds/project-0\necho $\'\\x1b[32;1mFetching changes...\\x1b[0;m\'\n$\'mkdir\' -p /builds/project-0.tmp/git-template\n$\'git\' config -f /builds/project-0.tmp/git-template/config init.defaultBranch none\n$\'git\' config -f /builds/project-0.tmp/git-template/config fetch.recurseSubmodules false\n$\'rm\' -f /builds/project-0/.git/index.lock\n$\'rm\' -f /builds/project-0/.git/shallow.lock\n$\'rm\' -f /builds/project-0/.git/HEAD.lock\n$\'rm\' -f /builds/project-0/.git/hooks/post-checkout\n$\'rm\' -f /builds/project-0/.git/config.lock\n$\'git\' init /builds/project-0 --template /builds/project-0.tmp/git-template\n$\'cd\' /builds/project-0\nif $\'git\' remote add origin /srv/git/project >/dev/null 2>&1; then\n  echo $\'\\x1b[32;1mCreated fresh repository.\\x1b[0;m\'\nelse\n  $\'git\' remote set-url origin /srv/git/project\nfi\n$\'git\' -c $\'http.userAgent=gitlab-runner development version linux/amd64\' fetch origin --prune --quiet\necho $\'\\x1b[32;1mChecking out 2912ef9e as detached HEAD (ref is master)...\\x1b[0;m\'\n$\'git\' checkout -f -q 2912ef9ede309acd88a37b8306a91494ce1452fc\n$\'git\' clean -ffdx\nif $\'git\' lfs version >/dev/null 2>&1; then\n  $\'git\' lfs pull\n  echo\nfi\necho $\'\\x1b[32;1mSkipping Git submodules setup\\x1b[0;m\'\n'
exit 0
`,
	StageRestoreCache: `$\'cd\' /builds/project-0\nif $\'gitlab-runner\' --version >/dev/null 2>&1; then\n  echo $\'\\x1b[32;1mChecking cache for deps...\\x1b[0;m\'\n  if $\'gitlab-runner\' cache-extractor --file ../../cache/project-0/deps/cache.zip --timeout 10; then\n    echo $\'\\x1b[32;1mSuccessfully extracted cache\\x1b[0;m\'\n  else\n    echo $\'\\x1b[0;33mFailed to extract cache\\x1b[0;m\'\n  fi\nelse\n  echo $\'\\x1b[0;33mMissing gitlab-runner. Extracting cache is disabled.\\x1b[0;m\'\nfi\n'
exit 0
`,
	StageStepScript: `$\'cd\' /builds/project-0\necho $\'\\x1b[32;1m$ echo before\\x1b[0;m\'\necho before\necho $\'\\x1b[32;1m$ mkdir -p cachedir out && echo built > out/app.txt\\x1b[0;m\'\nmkdir -p cachedir out && echo built > out/app.txt\necho $\'\\x1b[32;1m$ echo "job var=$JOB_VAR global=$GLOBAL_VAR"\\x1b[0;m\'\necho "job var=$JOB_VAR global=$GLOBAL_VAR"\n'
exit 0
`,
	StageAfterScript: `$\'cd\' /builds/project-0\necho $\'\\x1b[32;1mRunning after script...\\x1b[0;m\'\necho $\'\\x1b[32;1m$ echo after\\x1b[0;m\'\necho after\n'
exit 0
`,
	StageArchiveCache: `$\'cd\' /builds/project-0\nif $\'gitlab-runner\' --version >/dev/null 2>&1; then\n  echo $\'\\x1b[32;1mCreating cache deps...\\x1b[0;m\'\n  if $\'gitlab-runner\' cache-archiver --file ../../cache/project-0/deps/cache.zip --timeout 10 --path cachedir/; then\n    echo $\'\\x1b[32;1mCreated cache\\x1b[0;m\'\n  else\n    echo $\'\\x1b[0;33mFailed to create cache\\x1b[0;m\'\n  fi\nelse\n  echo $\'\\x1b[0;33mMissing gitlab-runner. Creating cache is disabled.\\x1b[0;m\'\nfi\n'
exit 0
`,
}

func TestStageScriptsMatchReference(t *testing.T) {
	for stage, want := range referenceTails {
		t.Run(stage, func(t *testing.T) {
			status := "running"
			if stage == StageAfterScript || stage == StageArchiveCache {
				status = "success"
			}
			got, err := generateScript(stage, referenceInfo(t, status))
			if err != nil {
				t.Fatal(err)
			}
			const marker = `export RUNNER_TEMP_PROJECT_DIR=$\'/builds/project-0.tmp\'\n`
			_, tail, ok := strings.Cut(got, marker)
			if !ok {
				t.Fatalf("no %s in script:\n%s", marker, got)
			}
			if tail != want {
				t.Errorf("script tail:\n got  %s\n want %s", tail, want)
			}
			if !strings.Contains(got, `export CI_JOB_STATUS=$\'`+status+`\'`) {
				t.Errorf("script does not export CI_JOB_STATUS=%s", status)
			}
		})
	}
}
