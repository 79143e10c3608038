package config

import "time"

// defaultServicesLimit is how many services a job may have unless the
// operator says otherwise: more than pipelines use (a database, a cache, a
// registry), far fewer than a job could ask for to multiply its limits.
const defaultServicesLimit = 10

// defaultLogSize bounds a sandbox container's log on the Engine host: a
// dockerd's output at its default level is kilobytes per job.
const (
	defaultLogSize      = "20m"
	defaultLogSizeBytes = 20 << 20
)

// Default returns the built-in configuration, used when no file is found and
// as the base every file is decoded onto, so absent keys keep these values.
// It returns fresh slices on every call: decoding writes into them.
func Default() Config {
	return Config{
		Engine: Engine{Host: ""},
		Sandbox: Sandbox{
			DindImage:              "docker:27-dind",
			DefaultImage:           "docker:27-cli",
			HelperImage:            "",
			DaemonSecurity:         DaemonSecurityPrivileged,
			PullPolicy:             []PullPolicy{PullAlways},
			MTU:                    0,
			ReadyTimeout:           Duration{60 * time.Second},
			Volumes:                nil,
			BuildsDir:              "/builds",
			CacheDir:               "/cache",
			WaitForServicesTimeout: Duration{30 * time.Second},
			PlainTCP:               PlainTCPBuildOnly,
		},
		Limits: Limits{CPUs: 0, Memory: "", MemoryBytes: 0, PIDs: 0, Services: defaultServicesLimit, LogSize: defaultLogSize, LogSizeBytes: defaultLogSizeBytes},
		Audit:  Audit{Path: DefaultAuditPath},
		Log:    Log{Format: LogFormatText, Level: "warning", File: ""},
	}
}
