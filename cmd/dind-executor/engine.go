package main

import (
	"os"

	"gitlab.com/dind-executor/dind-executor/executor"
	"gitlab.com/dind-executor/dind-executor/executor/audit"
)

// engineOptions opens the same Engine for the hooks and the operator
// commands, so a job and `pool fill` agree on how daemons are made.
func (o *operatorEnv) engineOptions() executor.Options {
	settings := executor.SettingsFromConfig(o.cfg)
	// This binary is also the relay of a plain endpoint (plain-relay).
	settings.RelayBinary, _ = os.Executable()
	var engineTLS *executor.EngineTLS
	if o.cfg.Engine.TLSCertPath != "" {
		engineTLS = &executor.EngineTLS{CertPath: o.cfg.Engine.TLSCertPath, Verify: o.cfg.Engine.TLSVerify}
	}
	return executor.Options{
		Hosts:      o.cfg.Engine.Endpoints(),
		TLS:        engineTLS,
		Settings:   settings,
		Audit:      audit.NewWriter(o.cfg.Audit.Path),
		RunnerHost: o.hostname,
		Version:    version,
		Log:        o.log,
	}
}
