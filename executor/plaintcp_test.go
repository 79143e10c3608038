package executor

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestPlainEndpointMovesTheDaemonsNamesAndDropsTLSFromTheBuild(t *testing.T) {
	p := testSpec()
	p.DaemonAliases = []string{"dockerd"}
	pe := plainEndpoint{network: "dind-x-plain", subnet: "172.28.0.0/16"}

	d := pe.daemon(daemonContainer(p, "dind-x-network", 1500, "dataroot", []string{"dockerd-entrypoint.sh"}))
	if got := d.networking.EndpointsConfig["dind-x-network"].Aliases; len(got) != 0 {
		t.Errorf("daemon aliases on the job network = %v, want none (docker must resolve to the plain network)", got)
	}
	if d.config.Hostname != "" {
		t.Errorf("daemon hostname %q: the Engine would make it an alias on the job network", d.config.Hostname)
	}
	if len(d.joins) != 1 || d.joins[0].network != pe.network || !slices.Equal(d.joins[0].aliases, []string{"docker", "dockerd"}) {
		t.Errorf("daemon joins %+v, want the plain network as docker and dockerd", d.joins)
	}
	for _, want := range []string{"PLAIN_RELAY=" + relayPath, "PLAIN_RELAY_SUBNET=172.28.0.0/16", "PLAIN_RELAY_PORT=2375"} {
		if !slices.Contains(d.config.Env, want) {
			t.Errorf("daemon env %v lacks %s", d.config.Env, want)
		}
	}

	plainBuild := buildContainer(p, "dind-x-network")
	tlsEnv := slices.Clone(plainBuild.config.Env)
	b := pe.build(plainBuild)
	if len(b.joins) != 1 || b.joins[0].network != pe.network || len(b.joins[0].aliases) != 0 {
		t.Errorf("build joins %+v, want the plain network", b.joins)
	}
	for _, kv := range b.config.Env {
		if strings.HasPrefix(kv, "DOCKER_TLS_VERIFY=") || strings.HasPrefix(kv, "DOCKER_TLS_CERTDIR=") {
			t.Errorf("build env keeps %s: the CLI would speak TLS to port 2375", kv)
		}
	}
	for _, want := range []string{"DOCKER_HOST=tcp://docker:2375", "DOCKER_CERT_PATH=" + ClientCertDir} {
		if !slices.Contains(b.config.Env, want) {
			t.Errorf("build env %v lacks %s", b.config.Env, want)
		}
	}
	if !slices.Equal(buildContainer(p, "dind-x-network").config.Env, tlsEnv) {
		t.Error("a job without a plain endpoint keeps the mutual-TLS environment")
	}
}

func TestCheckRelayBinary(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "main.go")
	if err := os.WriteFile(src, []byte("package main\nfunc main() {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	static := filepath.Join(dir, "static")
	build := exec.Command("go", "build", "-o", static, src)
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build a static binary: %v\n%s", err, out)
	}
	dynamic, err := exec.LookPath("sh")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, path, arch, wantErr string
	}{
		{"static, the Engine's architecture", static, "x86_64", ""},
		{"static, an Engine of unknown architecture", static, "riscv64", ""},
		{"static, another architecture", static, "aarch64", "built for EM_X86_64 but the Engine runs aarch64"},
		{"dynamically linked", dynamic, "x86_64", "build dind-executor with CGO_ENABLED=0"},
		{"not a binary", src, "x86_64", "read the relay binary"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkRelayBinary(tt.path, tt.arch)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want %q", err, tt.wantErr)
			}
		})
	}
}
