package config

import (
	"path"
	"slices"
	"strings"
)

// logLevels are the logrus levels an operator may pick; "warn" is
// accepted as logrus spells it too.
var logLevels = []string{"trace", "debug", "info", "warning", "warn", "error"}

func (a Audit) validate(add addFunc) {
	switch {
	case a.Path == "":
		add("audit.path is empty: name the trail file, e.g. %q", DefaultAuditPath)
	case !path.IsAbs(a.Path):
		add("audit.path = %q is not an absolute path: use e.g. %q", a.Path, DefaultAuditPath)
	case strings.HasSuffix(a.Path, "/"):
		add("audit.path = %q names a directory: name the trail file in it, e.g. %q", a.Path, path.Join(a.Path, "audit.jsonl"))
	}
}

func (l Log) validate(add addFunc) {
	if l.Format != LogFormatText && l.Format != LogFormatJSON {
		add("log.format = %q is not supported: use %q or %q", l.Format, LogFormatText, LogFormatJSON)
	}
	if !slices.Contains(logLevels, l.Level) {
		add("log.level = %q is not a level: use trace, debug, info, warning or error", l.Level)
	}
	switch {
	case l.File == "":
	case !path.IsAbs(l.File):
		add("log.file = %q is not an absolute path: use e.g. \"/var/log/dind-executor/executor.log\", or leave it empty for stderr", l.File)
	case strings.HasSuffix(l.File, "/"):
		add("log.file = %q names a directory: name the log file in it", l.File)
	}
}
