package runner

import (
	"errors"
	"fmt"
	"path"
	"path/filepath"
	"strconv"
	"strings"
)

// Build stage names (common/build.go BuildStage). StageStepScript is the
// runner's name for the "script" step; the runner sends it to the driver as
// StageBuildScript.
const (
	StagePrepareScript            = "prepare_script"
	StageGetSources               = "get_sources"
	StageClearWorktree            = "clear_worktree"
	StageRestoreCache             = "restore_cache"
	StageDownloadArtifacts        = "download_artifacts"
	StageStepScript               = "step_script"
	StageBuildScript              = "build_script"
	StageAfterScript              = "after_script"
	StageArchiveCache             = "archive_cache"
	StageArchiveCacheOnFailure    = "archive_cache_on_failure"
	StageUploadArtifactsOnSuccess = "upload_artifacts_on_success"
	StageUploadArtifactsOnFailure = "upload_artifacts_on_failure"
	StageCleanupFileVariables     = "cleanup_file_variables"
)

// errSkipStage means the stage would do nothing and is not sent at all.
var errSkipStage = errors.New("nothing to do in this stage")

// stageDescription is the header the runner prints above a stage's output.
func stageDescription(stage string) string {
	switch stage {
	case StagePrepareScript:
		return "Preparing environment"
	case StageGetSources:
		return "Getting source from Git repository"
	case StageClearWorktree:
		return "Deleting all tracked and untracked files due to source fetch failure"
	case StageRestoreCache:
		return "Restoring cache"
	case StageDownloadArtifacts:
		return "Downloading artifacts"
	case StageAfterScript:
		return "Running after_script"
	case StageArchiveCache:
		return "Saving cache for successful job"
	case StageArchiveCacheOnFailure:
		return "Saving cache for failed job"
	case StageUploadArtifactsOnFailure:
		return "Uploading artifacts for failed job"
	case StageUploadArtifactsOnSuccess:
		return "Uploading artifacts for successful job"
	case StageCleanupFileVariables:
		return "Cleaning up project directory and file based variables"
	}
	return fmt.Sprintf("Executing %q stage of the job script", stage)
}

// stepStage is StepToBuildStage: "step_" + lower-cased step name.
func stepStage(name string) string { return "step_" + strings.ToLower(name) }

// scriptInfo is everything a stage script is generated from.
type scriptInfo struct {
	job       Job
	vars      variables // all variables, expanded, with the current CI_JOB_STATUS
	st        buildState
	cacheDir  string // <cache_dir>/<project path>
	hostname  string // config_exec "hostname"
	style     ScriptStyle
	runnerURL string
	userAgent string
}

// generateScript returns the complete script for a stage, or errSkipStage.
func generateScript(stage string, info scriptInfo) (string, error) {
	w := newBashWriter(info.style, info.st.tmpProjectDir())
	var err error
	switch {
	case stage == StagePrepareScript:
		writePrepare(w, info)
	case stage == StageGetSources:
		err = writeGetSources(w, info)
	case stage == StageClearWorktree:
		writeClearWorktree(w, info)
	case stage == StageRestoreCache:
		err = writeRestoreCache(w, info)
	case stage == StageDownloadArtifacts:
		err = writeDownloadArtifacts(w, info)
	case stage == StageAfterScript:
		err = writeAfterScript(w, info)
	case stage == StageArchiveCache || stage == StageArchiveCacheOnFailure:
		err = writeArchiveCache(w, info, stage == StageArchiveCache)
	case stage == StageUploadArtifactsOnSuccess || stage == StageUploadArtifactsOnFailure:
		err = writeUploadArtifacts(w, info, stage == StageUploadArtifactsOnSuccess)
	case stage == StageCleanupFileVariables:
		writeCleanupFileVariables(w, info)
	case strings.HasPrefix(stage, "step_"):
		err = writeUserScript(w, info, stage)
	default:
		return "", fmt.Errorf("unknown build stage %q", stage)
	}
	if err != nil {
		return "", err
	}
	return w.Finish(info.style), nil
}

func writeExports(w *bashWriter, info scriptInfo) {
	for _, v := range info.vars {
		w.Variable(v)
	}
}

func writePrepare(w *bashWriter, info scriptInfo) {
	if info.hostname != "" {
		w.Line("echo " + strconv.Quote("Running on $(hostname) via "+info.hostname+"..."))
	} else {
		w.Line("echo " + strconv.Quote("Running on $(hostname)..."))
	}
}

// writeCommands echoes each command in green as "$ cmd", then runs it.
func writeCommands(w *bashWriter, commands []string) {
	for _, c := range commands {
		c = strings.TrimSpace(c)
		switch first, _, multi := strings.Cut(c, "\n"); {
		case c == "":
			w.EmptyLine()
		case multi:
			w.Noticef("$ %s # collapsed multi-line command", first)
		default:
			w.Noticef("$ %s", c)
		}
		w.Line(c)
	}
}

func writeUserScript(w *bashWriter, info scriptInfo, stage string) error {
	var script []string
	found := false
	for _, s := range jobSteps(info.job) {
		if s.Name != "after_script" && stepStage(s.Name) == stage {
			script, found = s.Script, true
			break
		}
	}
	if !found {
		return errSkipStage
	}
	writeExports(w, info)
	w.Cd(info.st.projectDir)
	writeCommands(w, script)
	return nil
}

func writeAfterScript(w *bashWriter, info scriptInfo) error {
	if len(info.job.AfterScript) == 0 {
		return errSkipStage
	}
	writeExports(w, info)
	w.Cd(info.st.projectDir)
	w.Noticef("Running after script...")
	writeCommands(w, info.job.AfterScript)
	return nil
}

func writeCleanupFileVariables(w *bashWriter, info scriptInfo) {
	// Like the runner: file variables are exported as paths only, then removed.
	for _, v := range info.vars {
		if v.File {
			w.Linef("export %s=%s", w.esc(v.Key), w.esc(w.TmpFile(v.Key)))
			continue
		}
		w.Variable(v)
	}
	for _, v := range info.vars {
		if v.File {
			w.RmFile(w.TmpFile(v.Key))
		}
	}
}

// guardRunnerCommand wraps f in `if gitlab-runner --version …`, so a sandbox
// without gitlab-runner only prints a warning.
func guardRunnerCommand(w *bashWriter, action string, f func()) {
	w.IfCmd("gitlab-runner", "--version")
	f()
	w.Else()
	w.Warningf("Missing gitlab-runner. %s is disabled.", action)
	w.EndIf()
}

// cacheFile is the cache archive for a key, relative to the project dir.
func cacheFile(info scriptInfo, key string) (human, rel string) {
	human = path.Join(info.job.Name, info.job.Ref)
	if key != "" {
		human = info.vars.expandValue(key, info.st.tmpProjectDir())
	}
	file := path.Join(info.cacheDir, human, "cache.zip")
	if r, err := filepath.Rel(info.st.projectDir, file); err == nil {
		file = r
	}
	return human, file
}

func cachePathArgs(c Cache) []string {
	var args []string
	for _, p := range c.Paths {
		args = append(args, "--path", p)
	}
	if c.Untracked {
		args = append(args, "--untracked")
	}
	return args
}

func writeRestoreCache(w *bashWriter, info scriptInfo) error {
	skip := true
	writeExports(w, info)
	w.Cd(info.st.projectDir)
	for _, c := range info.job.Cache {
		if len(cachePathArgs(c)) == 0 {
			continue
		}
		skip = false
		human, file := cacheFile(info, c.Key)
		if c.Policy == "push" {
			w.Noticef("Not downloading cache %s due to policy", human)
			continue
		}
		guardRunnerCommand(w, "Extracting cache", func() {
			w.Noticef("Checking cache for %s...", human)
			w.IfCmdWithOutput("gitlab-runner", "cache-extractor", "--file", file, "--timeout", "10")
			w.Noticef("Successfully extracted cache")
			w.Else()
			w.Warningf("Failed to extract cache")
			w.EndIf()
		})
	}
	if skip {
		return errSkipStage
	}
	return nil
}

func writeArchiveCache(w *bashWriter, info scriptInfo, onSuccess bool) error {
	skip := true
	writeExports(w, info)
	w.Cd(info.st.projectDir)
	for _, c := range info.job.Cache {
		if onSuccess && !whenOnSuccess(c.When) || !onSuccess && !whenOnFailure(c.When) {
			continue
		}
		paths := cachePathArgs(c)
		if len(paths) == 0 {
			continue
		}
		skip = false
		human, file := cacheFile(info, c.Key)
		if c.Policy == "pull" {
			w.Noticef("Not uploading cache %s due to policy", human)
			continue
		}
		guardRunnerCommand(w, "Creating cache", func() {
			w.Noticef("Creating cache %s...", human)
			args := append([]string{"cache-archiver", "--file", file, "--timeout", "10"}, paths...)
			w.IfCmdWithOutput("gitlab-runner", args...)
			w.Noticef("Created cache")
			w.Else()
			w.Warningf("Failed to create cache")
			w.EndIf()
		})
	}
	if skip {
		return errSkipStage
	}
	return nil
}

func writeDownloadArtifacts(w *bashWriter, info scriptInfo) error {
	var deps []Dependency
	for _, d := range info.job.Dependencies {
		if d.ArtifactsFilename != "" {
			deps = append(deps, d)
		}
	}
	if len(deps) == 0 {
		return errSkipStage
	}
	writeExports(w, info)
	w.Cd(info.st.projectDir)
	for _, d := range deps {
		guardRunnerCommand(w, "Artifacts downloading", func() {
			w.Noticef("Downloading artifacts for %s (%d)...", d.Name, d.ID)
			w.Command("gitlab-runner", "artifacts-downloader", "--url", info.runnerURL,
				"--token", d.Token, "--id", strconv.FormatInt(d.ID, 10))
		})
	}
	return nil
}

func writeUploadArtifacts(w *bashWriter, info scriptInfo, onSuccess bool) error {
	if info.runnerURL == "" {
		return errSkipStage
	}
	skip := true
	writeExports(w, info)
	w.Cd(info.st.projectDir)
	for _, a := range info.job.Artifacts {
		if onSuccess && !whenOnSuccess(a.When) || !onSuccess && !whenOnFailure(a.When) {
			continue
		}
		var paths []string
		for _, p := range a.Paths {
			paths = append(paths, "--path", p)
		}
		for _, p := range a.Exclude {
			paths = append(paths, "--exclude", p)
		}
		if a.Untracked {
			paths = append(paths, "--untracked")
		}
		if len(paths) == 0 {
			continue
		}
		skip = false
		args := []string{"artifacts-uploader", "--url", info.runnerURL, "--token", info.job.Token,
			"--id", strconv.FormatInt(info.job.ID, 10), "--timeout", "1h0m0s", "--response-header-timeout", "10m0s"}
		args = append(args, paths...)
		for _, opt := range [][2]string{{"--name", a.Name}, {"--expire-in", a.ExpireIn},
			{"--artifact-format", a.Format}, {"--artifact-type", a.Type}} {
			if opt[1] != "" {
				args = append(args, opt[0], opt[1])
			}
		}
		guardRunnerCommand(w, "Uploading artifacts", func() {
			w.Noticef("Uploading artifacts...")
			w.Command("gitlab-runner", args...)
		})
	}
	if skip {
		return errSkipStage
	}
	return nil
}
