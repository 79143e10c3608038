// Command bench measures dind-executor on the local Docker Engine against
// the docker executor's way of doing the same thing (a docker:dind service
// with TLS, the docker CLI), in one invocation, and checks the figures
// against the targets of issue 5. See bench/README.md.
//
//	go run ./bench            # full run, 2.5 to 4 minutes
//	go run ./bench -quick     # smoke run
//	go run ./bench -json      # machine-readable report on stdout
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/moby/moby/client"

	"gitlab.com/dind-executor/dind-executor/executor"
	"gitlab.com/dind-executor/dind-executor/integration/seedjob"
)

const (
	// benchLabel marks the objects the bench makes itself (baseline
	// daemons); its value is the invocation's tag.
	benchLabel = "io.dind-executor.bench"
	// benchProjectPath starts the namespace of every bench job's project,
	// followed by the invocation's tag (see projectPath): every object the
	// product makes for the bench (sandboxes, the project's cache and layer
	// volumes) carries the project path as a label.
	benchProjectPath = "dind-executor-bench"
	// dockerExecutorReference is the figure for a light job on the
	// docker executor + docker:dind TLS service on this machine kind. It
	// cannot be measured here (no gitlab-runner binary).
	dockerExecutorReference = 5.2
)

// sections, in run order.
var allSections = []string{"prepare", "pool", "stage", "output", "cleanup", "job", "seed", "concurrent"}

type options struct {
	runs        int
	quick       bool
	json        bool
	jsonFile    string
	render      string
	only        string
	concurrency int
	binary      string
}

// bencher holds what every section shares.
type bencher struct {
	opts     options
	sections map[string]bool
	root     string // module root
	work     string // the invocation's temp dir
	binary   string
	self     string // this bench binary, for the rusage wrapper
	config   string // config file contents
	repoDir  string
	repoSHA  string
	api      *client.Client
	mtu      int
	runTag   int64
	nextID   atomic.Int64
	events   *eventLog
	report   *Report
	log      io.Writer // progress, on stderr

	configPath string
	lightJobs  []float64 // light job seconds, for the concurrency note
	started    time.Time
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == wrapCommand {
		os.Exit(runWrapped(os.Args[2:]))
	}
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func parseOptions(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.IntVar(&o.runs, "runs", 5, "samples per figure (the empty-stage rows take 4× as many; the concurrency rows and the CLI's 1 GiB run at most 3)")
	fs.BoolVar(&o.quick, "quick", false, "short smoke run: 1 run, no 1 GiB output, 2 concurrent jobs")
	fs.BoolVar(&o.json, "json", false, "print the report as JSON on stdout (progress stays on stderr)")
	fs.StringVar(&o.jsonFile, "json-file", "", "also write the JSON report to this file")
	fs.StringVar(&o.render, "render", "", "print the tables of a saved JSON report (from -json or -json-file) and exit; measures nothing")
	fs.StringVar(&o.only, "only", "", "comma-separated sections to run ("+strings.Join(allSections, ",")+"); default all")
	fs.IntVar(&o.concurrency, "concurrency", 8, "light jobs run at once in the concurrency section")
	fs.StringVar(&o.binary, "binary", "", "use this dind-executor binary instead of building ./cmd/dind-executor")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %v", fs.Args())
	}
	if o.quick {
		o.runs = 1
		if o.concurrency > 2 {
			o.concurrency = 2
		}
	}
	if o.runs < 1 || o.concurrency < 1 {
		return o, errors.New("-runs and -concurrency must be at least 1")
	}
	return o, nil
}

func run(args []string) error {
	opts, err := parseOptions(args)
	if err != nil {
		return err
	}
	if opts.render != "" {
		return render(opts.render, os.Stdout)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	b := &bencher{opts: opts, log: os.Stderr, runTag: 100_000_000 + rand.Int64N(900_000_000)}
	if b.sections, err = selectSections(opts.only); err != nil {
		return err
	}
	if err := b.setup(ctx); err != nil {
		return err
	}
	defer os.RemoveAll(b.work)
	defer b.api.Close()
	// Whatever happens, nothing of this invocation stays on the Engine.
	defer func() {
		if _, _, failed := b.sweep(); len(failed) > 0 {
			fmt.Fprintf(os.Stderr, "bench: WARNING: could not remove: %s\n", strings.Join(failed, "; "))
		}
	}()
	b.events = startEventLog(ctx, b.api)
	defer b.events.close()

	b.started = time.Now()
	steps := []struct {
		name string
		run  func(context.Context) error
	}{
		{"hooks", b.hookSections},
		{"pool", b.poolSection},
		{"job", b.lightJobSection},
		{"seed", b.seedSection},
		{"concurrent", b.concurrentSection},
	}
	for _, s := range steps {
		if err := s.run(ctx); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
	}
	b.progress("done")
	left, other, failed := b.sweep()
	b.report.Leftovers = left
	if len(other) > 0 {
		b.report.Notes = append(b.report.Notes, fmt.Sprintf("removed at the end, as expected: %s", strings.Join(other, ", ")))
	}
	if len(failed) > 0 {
		b.report.Notes = append(b.report.Notes, fmt.Sprintf("WARNING: could not remove (remove them by hand): %s", strings.Join(failed, "; ")))
	}
	b.report.Machine.LoadEnd = loadAvg()

	if opts.jsonFile != "" {
		f, err := os.Create(opts.jsonFile)
		if err != nil {
			return err
		}
		if err := errors.Join(b.report.writeJSON(f), f.Close()); err != nil {
			return err
		}
	}
	if opts.json {
		return b.report.writeJSON(os.Stdout)
	}
	b.report.writeText(os.Stdout)
	return nil
}

func selectSections(only string) (map[string]bool, error) {
	sel := map[string]bool{}
	if only == "" {
		for _, s := range allSections {
			sel[s] = true
		}
		return sel, nil
	}
	for _, s := range strings.Split(only, ",") {
		s = strings.TrimSpace(s)
		known := false
		for _, a := range allSections {
			known = known || a == s
		}
		if !known {
			return nil, fmt.Errorf("unknown section %q (known: %s)", s, strings.Join(allSections, ","))
		}
		sel[s] = true
	}
	return sel, nil
}

func (b *bencher) progress(format string, args ...any) {
	elapsed := ""
	if !b.started.IsZero() {
		elapsed = fmt.Sprintf("[%3.0fs] ", time.Since(b.started).Seconds())
	}
	fmt.Fprintf(b.log, "bench: "+elapsed+format+"\n", args...)
}

// heavyRuns bounds the samples of the slowest rows (8 concurrent jobs, the
// docker CLI streaming 1 GiB) so that a full run stays near 4 minutes.
func (b *bencher) heavyRuns() int { return min(b.opts.runs, maxHeavyRuns) }

const maxHeavyRuns = 3

// projectPath is the path of one of the invocation's projects.
func (b *bencher) projectPath(name string) string {
	return fmt.Sprintf("%s-%d/%s", benchProjectPath, b.runTag, name)
}

// ours says whether a product object belongs to this invocation.
func (b *bencher) ours(labels map[string]string) bool {
	return strings.HasPrefix(labels[executor.LabelProjectPath], b.projectPath(""))
}

// newJobID gives every job of the invocation its own id.
func (b *bencher) newJobID() int64 { return b.runTag*1000 + b.nextID.Add(1) }

// setup builds the binary, writes the seed repository and the config, and
// checks the Engine and the images.
func (b *bencher) setup(ctx context.Context) error {
	var err error
	if b.root, err = moduleRoot(); err != nil {
		return err
	}
	if b.self, err = os.Executable(); err != nil {
		return err
	}
	if b.work, err = os.MkdirTemp("", "dind-executor-bench"); err != nil {
		return err
	}
	b.binary = b.opts.binary
	if b.binary == "" {
		b.binary = filepath.Join(b.work, "dind-executor")
		b.progress("building ./cmd/dind-executor")
		build := exec.CommandContext(ctx, "go", "build", "-o", b.binary, "./cmd/dind-executor")
		build.Dir = b.root
		if out, err := build.CombinedOutput(); err != nil {
			return fmt.Errorf("go build ./cmd/dind-executor: %w\n%s", err, out)
		}
	}
	b.repoDir = filepath.Join(b.work, "repo")
	if b.repoSHA, err = seedjob.WriteRepo(b.repoDir); err != nil {
		return fmt.Errorf("seed repository: %w", err)
	}
	b.config = seedjob.Config(b.repoDir)
	b.configPath = filepath.Join(b.work, "config.toml")
	if err := os.WriteFile(b.configPath, []byte(b.config), 0o600); err != nil {
		return err
	}

	if b.api, err = client.New(client.FromEnv); err != nil {
		return err
	}
	ver, err := b.api.ServerVersion(ctx, client.ServerVersionOptions{})
	if err != nil {
		return fmt.Errorf("no Docker Engine answers (%w): run `make setup` first", err)
	}
	for _, image := range []string{seedjob.DaemonImage, seedjob.JobImage, seedjob.HelperImage} {
		if _, err := b.api.ImageInspect(ctx, image); err != nil {
			return fmt.Errorf("image %s is missing (%w): run `make setup` (integration/images/build.sh) first", image, err)
		}
	}
	if _, err := exec.LookPath("docker"); err != nil {
		return fmt.Errorf("the docker CLI (the stage baseline) is not on PATH: %w", err)
	}
	b.mtu = b.outerMTU(ctx)
	b.report = &Report{Runs: b.opts.runs, Quick: b.opts.quick, Machine: Machine{
		Date:          time.Now().UTC().Format("2006-01-02 15:04 MST"),
		CPUs:          runtime.NumCPU(),
		MemoryGiB:     float64(memTotalKB()) / (1 << 20),
		Kernel:        readTrim("/proc/sys/kernel/osrelease"),
		DockerVersion: ver.Version,
		DockerAPI:     ver.APIVersion,
		GoVersion:     runtime.Version(),
		Commit:        gitCommit(b.root),
		LoadStart:     loadAvg(),
		OtherRunning:  b.otherContainers(ctx),
	}}
	b.progress("tag %d: work dir %s, binary %s", b.runTag, b.work, b.binary)
	return nil
}

// outerMTU is the default bridge's MTU, as the executor reads it.
func (b *bencher) outerMTU(ctx context.Context) int {
	res, err := b.api.NetworkInspect(ctx, "bridge", client.NetworkInspectOptions{})
	if err == nil {
		if mtu, err := strconv.Atoi(res.Network.Options["com.docker.network.driver.mtu"]); err == nil && mtu > 0 {
			return mtu
		}
	}
	return 1500
}

func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.Contains(string(data), "module gitlab.com/dind-executor/dind-executor\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run the bench from the dind-executor repository (go run ./bench)")
		}
		dir = parent
	}
}

func gitCommit(dir string) string {
	cmd := exec.Command("git", "rev-parse", "--short", "HEAD")
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		return ""
	}
	commit := strings.TrimSpace(string(out))
	status := exec.Command("git", "status", "--porcelain", "--untracked-files=no")
	status.Dir = dir
	if out, err := status.Output(); err == nil && len(strings.TrimSpace(string(out))) > 0 {
		commit += "+changes"
	}
	return commit
}

func readTrim(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(data))
}

// sweep removes every object of this invocation still on the Engine: the
// product's (managed objects whose project path is one of this
// invocation's) and the baseline's (by the bench label). It returns what it
// removed that a sandbox's cleanup should have removed (objects carrying a
// sandbox id), the rest (the project's cache and layer volumes, which
// outlive jobs by design), and what it could not remove after a few tries
// (an object another process still uses, say), with the Engine's error.
func (b *bencher) sweep() (sandboxLeft, other, failed []string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	tag := strconv.FormatInt(b.runTag, 10)
	filters := []client.Filters{
		client.Filters{}.Add("label", executor.LabelManaged+"=true"),
		client.Filters{}.Add("label", benchLabel+"="+tag),
	}
	mine := func(labels map[string]string) bool { return labels[benchLabel] == tag || b.ours(labels) }
	note := func(kind, name string, labels map[string]string) {
		if labels[executor.LabelSandbox] != "" {
			sandboxLeft = append(sandboxLeft, kind+" "+name)
			return
		}
		other = append(other, kind+" "+name)
	}
	for attempt := range 3 {
		if attempt > 0 {
			time.Sleep(time.Second)
		}
		failed = nil
		fail := func(kind, name string, err error) {
			failed = append(failed, fmt.Sprintf("%s %s (%v)", kind, name, err))
		}
		for _, f := range filters {
			if cs, err := b.api.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f}); err == nil {
				for _, c := range cs.Items {
					if !mine(c.Labels) {
						continue
					}
					name := strings.TrimPrefix(strings.Join(c.Names, ","), "/")
					if _, err := b.api.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil {
						fail("container", name, err)
						continue
					}
					note("container", name, c.Labels)
				}
			}
			if vs, err := b.api.VolumeList(ctx, client.VolumeListOptions{Filters: f}); err == nil {
				for _, v := range vs.Items {
					if !mine(v.Labels) {
						continue
					}
					if _, err := b.api.VolumeRemove(ctx, v.Name, client.VolumeRemoveOptions{Force: true}); err != nil {
						fail("volume", v.Name, err)
						continue
					}
					note("volume", v.Name, v.Labels)
				}
			}
			if ns, err := b.api.NetworkList(ctx, client.NetworkListOptions{Filters: f}); err == nil {
				for _, n := range ns.Items {
					if !mine(n.Labels) {
						continue
					}
					if _, err := b.api.NetworkRemove(ctx, n.ID, client.NetworkRemoveOptions{}); err != nil {
						fail("network", n.Name, err)
						continue
					}
					note("network", n.Name, n.Labels)
				}
			}
		}
		if len(failed) == 0 {
			break
		}
	}
	return sandboxLeft, other, failed
}

// loadAvg is the 1-minute load average: other work on the host skews every
// figure, so the report says how busy it was.
func loadAvg() string {
	fields := strings.Fields(readTrim("/proc/loadavg"))
	if len(fields) == 0 {
		return "?"
	}
	return fields[0]
}

// otherContainers counts running containers that are not this bench's:
// other tests sharing the Engine.
func (b *bencher) otherContainers(ctx context.Context) int {
	res, err := b.api.ContainerList(ctx, client.ContainerListOptions{})
	if err != nil {
		return -1
	}
	return len(res.Items)
}
