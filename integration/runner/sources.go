package runner

import (
	"path"
	"strconv"
)

// writeGetSources follows the runner 15.11 reference get_sources script:
// a git init + fetch + detached checkout of the job's SHA into CI_PROJECT_DIR.
func writeGetSources(w *bashWriter, info scriptInfo) error {
	job, pd := info.job, info.st.projectDir
	writeExports(w, info)

	switch job.GitStrategy {
	case "none":
		w.Noticef("Skipping Git repository setup")
		w.MkDir(pd)
		return nil
	case "empty":
		w.Noticef("Skipping Git repository setup and creating an empty build directory")
		w.RmDir(pd)
		w.MkDir(pd)
		return nil
	}

	w.Variable(Variable{Key: "GIT_LFS_SKIP_SMUDGE", Value: "1"})
	if job.GitStrategy == "clone" {
		w.RmDir(pd)
	}
	if job.Depth > 0 {
		w.Noticef("Fetching changes with git depth set to %d...", job.Depth)
	} else {
		w.Noticef("Fetching changes...")
	}

	tmpl := w.TmpFile("git-template")
	w.MkDir(tmpl)
	w.Command("git", "config", "-f", path.Join(tmpl, "config"), "init.defaultBranch", "none")
	w.Command("git", "config", "-f", path.Join(tmpl, "config"), "fetch.recurseSubmodules", "false")
	for _, lock := range []string{"index.lock", "shallow.lock", "HEAD.lock", "hooks/post-checkout", "config.lock"} {
		w.RmFile(path.Join(pd, ".git", lock))
	}
	w.Command("git", "init", pd, "--template", tmpl)
	w.Cd(pd)
	w.IfCmd("git", "remote", "add", "origin", job.RepoURL)
	w.Noticef("Created fresh repository.")
	w.Else()
	w.Command("git", "remote", "set-url", "origin", job.RepoURL)
	w.EndIf()

	fetch := []string{"-c", "http.userAgent=" + info.userAgent, "fetch", "origin"}
	fetch = append(fetch, job.Refspecs...)
	if job.Depth > 0 {
		fetch = append(fetch, "--depth", strconv.Itoa(job.Depth))
	}
	fetch = append(fetch, "--prune", "--quiet")
	w.Command("git", fetch...)

	// The runner always has a SHA; without one, check out the fetched ref.
	target, short := job.SHA, job.SHA
	if target == "" {
		target, short = "origin/"+job.Ref, "origin/"+job.Ref
	} else if len(short) > 8 {
		short = short[:8]
	}
	w.Noticef("Checking out %s as detached HEAD (ref is %s)...", short, job.Ref)
	w.Command("git", "checkout", "-f", "-q", target)
	w.Command("git", "clean", "-ffdx")
	w.IfCmd("git", "lfs", "version")
	w.Command("git", "lfs", "pull")
	w.EmptyLine()
	w.EndIf()
	w.Noticef("Skipping Git submodules setup")
	return nil
}

// writeClearWorktree runs between a failed get_sources attempt and the next.
func writeClearWorktree(w *bashWriter, info scriptInfo) {
	w.Cd(info.st.projectDir)
	w.Command("git", "clean", "-ffdx")
	w.Command("git", "reset", "--hard")
}
