package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// writeRunnerImageRepo makes the git repository the runner image's job
// checks out: this module's files as the working tree has them (tracked
// and untracked, minus what .gitignore ignores), its dependencies vendored
// (the builder stage reaches no module proxy), and a .dockerignore for
// .git: a fresh checkout's .git differs from job to job (index stat data,
// FETCH_HEAD), which would change `COPY . .` and defeat any layer cache,
// so real projects ignore it too. It returns the commit.
func writeRunnerImageRepo(ctx context.Context, root, dir string) (string, error) {
	files, err := gitOutput(ctx, root, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
	if err != nil {
		return "", err
	}
	for _, rel := range strings.Split(strings.TrimRight(files, "\x00"), "\x00") {
		if err := copyRegular(filepath.Join(root, rel), filepath.Join(dir, rel)); err != nil {
			return "", err
		}
	}
	vendor := exec.CommandContext(ctx, "go", "mod", "vendor", "-o", filepath.Join(dir, "vendor"))
	vendor.Dir = root
	if out, err := vendor.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go mod vendor: %w\n%s", err, out)
	}
	if err := os.WriteFile(filepath.Join(dir, ".dockerignore"), []byte(".git\n"), 0o644); err != nil {
		return "", fmt.Errorf("write .dockerignore: %w", err)
	}
	for _, args := range [][]string{{"init", "-q", "-b", "main"}, {"add", "-f", "."}, {"commit", "-q", "-m", "dind-executor snapshot"}} {
		if _, err := gitOutput(ctx, dir, args...); err != nil {
			return "", err
		}
	}
	return gitOutput(ctx, dir, "rev-parse", "HEAD")
}

// copyRegular copies a regular file with its mode; anything else (a file
// deleted from the working tree, a symlink) is skipped.
func copyRegular(from, to string) error {
	info, err := os.Lstat(from)
	if err != nil || !info.Mode().IsRegular() {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		return fmt.Errorf("copy %s: %w", from, err)
	}
	src, err := os.Open(from)
	if err != nil {
		return fmt.Errorf("copy %s: %w", from, err)
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, info.Mode().Perm())
	if err != nil {
		return fmt.Errorf("copy %s: %w", from, err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return fmt.Errorf("copy %s: %w", from, err)
	}
	return dst.Close()
}

// gitOutput runs git in dir with a fixed identity and returns its trimmed
// output.
func gitOutput(ctx context.Context, dir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=bench", "GIT_AUTHOR_EMAIL=bench@example.com",
		"GIT_COMMITTER_NAME=bench", "GIT_COMMITTER_EMAIL=bench@example.com")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, stderr.Bytes())
	}
	return strings.TrimSpace(string(out)), nil
}
