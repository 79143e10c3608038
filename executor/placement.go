package executor

import (
	"context"
	"fmt"
	"hash/fnv"
	"strings"

	"github.com/moby/moby/client"
)

// engineLoad is what placement weighs of one Engine: the sandboxes on it
// now (pooled ones included: each is a running daemon) and the memory it
// reports.
type engineLoad struct {
	Sandboxes int
	MemTotal  int64 // bytes; 0 when the Engine does not say
}

// sandboxCount counts the sandboxes on the Engine by their volumes and
// networks, the first objects a sandbox gets (a pooled one has only a
// network), so a sandbox another prepare has just begun counts too.
func (e *docker) sandboxCount(ctx context.Context) (int, error) {
	filter := client.Filters{}.Add("label", LabelManaged+"=true").Add("label", LabelSandbox)
	ids := map[string]bool{}
	vols, err := e.api.VolumeList(ctx, client.VolumeListOptions{Filters: filter})
	if err != nil {
		return 0, fmt.Errorf("list sandbox volumes: %w", err)
	}
	for _, v := range vols.Items {
		ids[v.Labels[LabelSandbox]] = true
	}
	nets, err := e.api.NetworkList(ctx, client.NetworkListOptions{Filters: filter})
	if err != nil {
		return 0, fmt.Errorf("list sandbox networks: %w", err)
	}
	for _, n := range nets.Items {
		ids[n.Labels[LabelSandbox]] = true
	}
	return len(ids), nil
}

// memory is the memory the Engine reports (0 when it does not say).
func (e *docker) memory(ctx context.Context) (int64, error) {
	info, err := e.api.Info(ctx, client.InfoOptions{})
	if err != nil {
		return 0, fmt.Errorf("read the Engine's info: %w", err)
	}
	return info.Info.MemTotal, nil
}

// mark makes the sandbox's first object, its builds volume, which load
// counts. prepare makes it again (it is the same volume): on one Engine
// nothing else calls mark.
func (e *docker) mark(ctx context.Context, id Identity) error {
	return e.createVolume(ctx, id.Name(RoleBuilds), id.Labels(RoleBuilds))
}

// candidate is one Engine as placement found it.
type candidate struct {
	engine string
	load   engineLoad
	err    error // the Engine did not answer: skipped
}

// score is the load a new sandbox would find: sandboxes per GiB of the
// Engine's memory, counting the new one, so an idle larger Engine wins
// over an idle smaller one.
func (c candidate) score() float64 {
	gib := float64(c.load.MemTotal) / (1 << 30)
	if gib < 1 {
		gib = 1
	}
	return float64(c.load.Sandboxes+1) / gib
}

// choose picks the least loaded Engine that answered for sandbox id.
// Equally loaded Engines are ordered by a hash of the sandbox and the
// Engine (rendezvous hashing), so jobs that start together, which all see
// the same loads, spread over the Engines instead of all taking the first.
// why is one line for the job log: where, why, and what was skipped.
func choose(id SandboxID, cands []candidate) (best int, why string, err error) {
	best = -1
	var skipped, answered []string
	for i, c := range cands {
		if c.err != nil {
			skipped = append(skipped, fmt.Sprintf("%s skipped (%v)", c.engine, c.err))
			continue
		}
		answered = append(answered, c.engine)
		if best < 0 || lessLoaded(id, c, cands[best]) {
			best = i
		}
	}
	if best < 0 {
		return -1, "", fmt.Errorf("none of the %d Docker Engines of [engine] hosts answers: %s", len(cands), strings.Join(skipped, "; "))
	}
	c := cands[best]
	why = fmt.Sprintf("Docker Engine %s (%d sandboxes, %.1f GiB): the least loaded of %d answering",
		c.engine, c.load.Sandboxes, float64(c.load.MemTotal)/(1<<30), len(answered))
	if len(skipped) > 0 {
		why += "; " + strings.Join(skipped, "; ")
	}
	return best, why, nil
}

func lessLoaded(id SandboxID, a, b candidate) bool {
	sa, sb := a.score(), b.score()
	if sa != sb {
		return sa < sb
	}
	return rendezvous(id, a.engine) > rendezvous(id, b.engine)
}

func rendezvous(id SandboxID, engine string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(id))
	h.Write([]byte{0})
	h.Write([]byte(engine))
	return h.Sum64()
}
