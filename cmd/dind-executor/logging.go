package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/sirupsen/logrus"

	"gitlab.com/dind-executor/dind-executor/config"
)

// logLevelEnv overrides [log] level for one run, e.g. while debugging a
// runner without editing its config.
const logLevelEnv = "DIND_EXECUTOR_LOG_LEVEL"

// newLogger is the executor's own log, as [log] says: text or JSON, to a
// file or to stderr. Never to stdout: the runner parses config's stdout,
// and prepare's and run's stdout is the job's own log.
func newLogger(cfg config.Log, stderr io.Writer, envLevel string) (*logrus.Logger, error) {
	log := logrus.New()
	level, err := logrus.ParseLevel(cfg.Level)
	if err != nil {
		return nil, fmt.Errorf("log.level %q: %w", cfg.Level, err)
	}
	if l, err := logrus.ParseLevel(envLevel); err == nil {
		level = l
	}
	log.SetLevel(level)
	if cfg.Format == config.LogFormatJSON {
		log.SetFormatter(&logrus.JSONFormatter{})
	} else {
		log.SetFormatter(&logrus.TextFormatter{DisableColors: true, FullTimestamp: true})
	}
	log.SetOutput(stderr)
	if cfg.File != "" {
		f, err := openLogFile(cfg.File)
		if err != nil {
			return nil, err
		}
		// Each entry is one write to an O_APPEND file, so concurrent hooks
		// do not interleave lines. The file closes when the process exits.
		log.SetOutput(f)
	}
	return log, nil
}

func openLogFile(path string) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("create log directory: %w (check [log] file)", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("open log file: %w (check [log] file)", err)
	}
	return f, nil
}
