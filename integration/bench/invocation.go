package main

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync/atomic"

	"gitlab.com/dind-executor/dind-executor/executor"
)

const (
	// benchLabel marks the objects the bench makes itself (baseline
	// daemons, the Go image); its value is the invocation's tag.
	benchLabel = "io.dind-executor.bench"
	// benchProjectPath starts the namespace of every bench job's project,
	// followed by the invocation's tag: every object the product makes for
	// the bench (sandboxes, the project's cache and layer volumes) carries
	// the project path as a label.
	benchProjectPath = "dind-executor-bench"
)

// invocation tells this run's objects apart from everything else on the
// Engine, and gives its jobs unique ids.
type invocation struct {
	tag         int64
	nextID      atomic.Int64
	nextProject atomic.Int64
}

// benchProject is one of the invocation's projects. The executor keys a
// project's caches (runner cache, layer cache) on its id, and labels them
// with its path.
type benchProject struct {
	path string
	id   int64
}

func newInvocation() *invocation {
	return &invocation{tag: 100_000_000 + rand.Int64N(900_000_000)}
}

// projectPath is the path of one of the invocation's projects.
func (inv *invocation) projectPath(name string) string {
	return fmt.Sprintf("%s-%d/%s", benchProjectPath, inv.tag, name)
}

// newProject is a project of its own: its first job starts without any
// cache.
func (inv *invocation) newProject(name string) benchProject {
	n := inv.nextProject.Add(1)
	return benchProject{path: inv.projectPath(fmt.Sprintf("%s-%d", name, n)), id: inv.tag*1000 + n}
}

// newJobID gives every job of the invocation its own id.
func (inv *invocation) newJobID() int64 { return inv.tag*1000 + inv.nextID.Add(1) }

// labels are what the bench puts on the objects it makes itself.
func (inv *invocation) labels(role string) map[string]string {
	return map[string]string{benchLabel: inv.tagString(), benchLabel + ".role": role}
}

func (inv *invocation) tagString() string { return strconv.FormatInt(inv.tag, 10) }

// owns says whether an object belongs to this invocation: made by the bench
// (its label) or by the product for one of the bench's projects.
func (inv *invocation) owns(labels map[string]string) bool {
	return labels[benchLabel] == inv.tagString() ||
		strings.HasPrefix(labels[executor.LabelProjectPath], inv.projectPath(""))
}
