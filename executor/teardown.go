package executor

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// Removed lists what a Teardown removed, by name.
type Removed struct {
	Containers []string
	Volumes    []string
	Networks   []string
	LayerCache string // what happened to the project's layer cache, if any
}

func (r Removed) String() string {
	return fmt.Sprintf("%d containers, %d volumes, %d networks", len(r.Containers), len(r.Volumes), len(r.Networks))
}

// teardownResult is what a teardown did: what it removed and, when asked
// to, what the sandbox's daemon reported holding before it went.
type teardownResult struct {
	Removed
	asked       bool
	produced    Produced
	producedErr error
}

// teardown removes every container, volume and network labelled with the
// sandbox id. With ask not nil, the sandbox's daemon is first asked what
// it produced, for as long as ask lasts (at most producedTimeout). The
// job's containers (build, helper, services) go at once, while the daemon
// is asked (and its layer cache cleaned, which waits for them); the daemon
// and markers go as soon as it has answered, then volumes and the network
// together. It carries on past each failure and joins the errors; objects
// already gone count as removed. Safe after a failed prepare and
// idempotent.
func (e *docker) teardown(ctx context.Context, sandboxID SandboxID, ask context.Context) (teardownResult, error) {
	var res teardownResult
	removed := &res.Removed
	filter := client.Filters{}.Add("label", LabelSandbox+"="+string(sandboxID))
	var errs []error

	// A daemon taken from the pool belongs to its pooled sandbox, which
	// goes with the job's.
	pooled, err := e.claimedPool(ctx, sandboxID)
	if err != nil {
		errs = append(errs, fmt.Errorf("find the pooled sandbox of %s: %w", sandboxID, err))
	}

	// The project's runner cache outlives the sandbox: note its last use
	// for gc --caches, while the removal goes on.
	stamped := e.stampCacheUse(ctx, sandboxID)
	defer stamped()

	containers, err := e.api.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: filter})
	if err != nil {
		errs = append(errs, fmt.Errorf("list containers: %w", err))
	}
	claim, cached := layerClaim(containers.Items)
	jobs, rest := splitJobContainers(containers.Items)

	// The client for the daemon is made while the build container still
	// holds the job's client certificate; the job's containers then go
	// while the daemon answers, so nothing of the job can start anything
	// in it any more once it is cleaned for the project's next job.
	var inner *client.Client
	var innerErr error
	if ask != nil || cached {
		inner, innerErr = e.innerClient(ctx, sandboxID)
	}
	var jobsRemoved Removed
	var jobErr error
	jobsGone := make(chan struct{})
	go func() {
		defer close(jobsGone)
		jobErr = e.removeContainers(ctx, jobs, &jobsRemoved)
	}()
	if ask != nil {
		res.asked = true
		res.producedErr = innerErr
		if inner != nil {
			pctx, cancel := context.WithTimeout(ask, producedTimeout)
			res.produced, res.producedErr = askProduced(pctx, inner)
			cancel()
		}
	}
	if cached {
		<-jobsGone
		cleaner, cleanerErr := inner, innerErr
		if res.asked && errors.Is(res.producedErr, context.DeadlineExceeded) {
			// It did not answer what it holds in time: it would not
			// clean up either, and asking again costs another wait.
			cleaner, cleanerErr = nil, fmt.Errorf("the job's daemon did not answer within %s: %w", producedTimeout, res.producedErr)
		}
		summary, err := e.releaseLayerCache(ctx, sandboxID, claim, cleaner, cleanerErr)
		removed.LayerCache = summary
		errs = append(errs, err)
	}
	if inner != nil {
		inner.Close()
	}
	// Without a layer cache to clean, the daemon has told what it holds
	// and goes now, beside the job's containers.
	errs = append(errs, e.removeContainers(ctx, rest, removed))
	<-jobsGone
	errs = append(errs, jobErr)
	removed.add(jobsRemoved)

	// Volumes and the network no longer have users: both go at once.
	var volErr, netErr error
	var wg sync.WaitGroup
	wg.Go(func() { removed.Volumes, volErr = e.removeVolumes(ctx, filter) })
	wg.Go(func() { removed.Networks, netErr = e.removeNetworks(ctx, filter) })
	wg.Wait()
	errs = append(errs, volErr, netErr)
	if !slices.Contains(removed.Containers, sandboxID.Name(RoleBuild)) {
		// No build container: prepare never finished, maybe killed half
		// way. The Engine still completes the requests it had sent, so
		// objects can appear after the lists above, even when they found
		// nothing. Look again once they have landed.
		errs = append(errs, e.sweepLate(ctx, filter, removed))
	}
	if pooled != "" && pooled != sandboxID {
		more, err := e.teardown(ctx, pooled, nil)
		removed.add(more.Removed)
		errs = append(errs, err)
	}
	return res, errors.Join(errs...)
}

// lateObjectsSettle is how long requests of a killed prepare can still
// land after it died; sweepLate looks this long after each sweep.
const lateObjectsSettle = time.Second

// sweepLate removes what appears after a teardown's first pass, until a
// pass finds nothing (at most three).
func (e *docker) sweepLate(ctx context.Context, filter client.Filters, removed *Removed) error {
	var errs []error
	for range 3 {
		select {
		case <-ctx.Done():
			return errors.Join(errs...)
		case <-time.After(lateObjectsSettle):
		}
		var late Removed
		containers, err := e.api.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: filter})
		if err != nil {
			return errors.Join(append(errs, fmt.Errorf("list containers: %w", err))...)
		}
		errs = append(errs, e.removeContainers(ctx, containers.Items, &late))
		var volErr, netErr error
		late.Volumes, volErr = e.removeVolumes(ctx, filter)
		late.Networks, netErr = e.removeNetworks(ctx, filter)
		errs = append(errs, volErr, netErr)
		removed.add(late)
		if late.empty() {
			break
		}
	}
	return errors.Join(errs...)
}

// removeVolumes removes the volumes filter selects; one already gone
// counts as removed.
func (e *docker) removeVolumes(ctx context.Context, filter client.Filters) ([]string, error) {
	volumes, err := e.api.VolumeList(ctx, client.VolumeListOptions{Filters: filter})
	if err != nil {
		return nil, fmt.Errorf("list volumes: %w", err)
	}
	var names []string
	var errs []error
	for _, v := range volumes.Items {
		if _, err := e.api.VolumeRemove(ctx, v.Name, client.VolumeRemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("remove volume %s: %w", v.Name, err))
			continue
		}
		names = append(names, v.Name)
	}
	return names, errors.Join(errs...)
}

// removeNetworks removes the networks filter selects; one already gone
// counts as removed.
func (e *docker) removeNetworks(ctx context.Context, filter client.Filters) ([]string, error) {
	networks, err := e.api.NetworkList(ctx, client.NetworkListOptions{Filters: filter})
	if err != nil {
		return nil, fmt.Errorf("list networks: %w", err)
	}
	var names []string
	var errs []error
	for _, n := range networks.Items {
		if _, err := e.api.NetworkRemove(ctx, n.ID, client.NetworkRemoveOptions{}); err != nil && !cerrdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("remove network %s: %w", n.Name, err))
			continue
		}
		names = append(names, n.Name)
	}
	return names, errors.Join(errs...)
}

func (r Removed) empty() bool { return len(r.Containers)+len(r.Volumes)+len(r.Networks) == 0 }

// add counts what another teardown removed.
func (r *Removed) add(more Removed) {
	r.Containers = append(r.Containers, more.Containers...)
	r.Volumes = append(r.Volumes, more.Volumes...)
	r.Networks = append(r.Networks, more.Networks...)
}

// removeContainers force-removes containers in parallel and adds them to
// removed; one already gone counts as removed.
func (e *docker) removeContainers(ctx context.Context, containers []container.Summary, removed *Removed) error {
	var mu sync.Mutex
	var wg sync.WaitGroup
	var errs []error
	for _, c := range containers {
		wg.Go(func() {
			_, err := e.api.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
			mu.Lock()
			defer mu.Unlock()
			if err != nil && !cerrdefs.IsNotFound(err) {
				errs = append(errs, fmt.Errorf("remove container %s: %w", containerName(c.Names, c.ID), err))
				return
			}
			removed.Containers = append(removed.Containers, containerName(c.Names, c.ID))
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// splitJobContainers separates the containers the job's code runs in
// (build, helper, services) from the daemon and the markers.
func splitJobContainers(all []container.Summary) (jobs, rest []container.Summary) {
	for _, c := range all {
		switch Role(c.Labels[LabelRole]) {
		case RoleBuild, RoleHelper, RoleService:
			jobs = append(jobs, c)
		default:
			rest = append(rest, c)
		}
	}
	return jobs, rest
}

func containerName(names []string, id string) string {
	if len(names) > 0 && len(names[0]) > 1 {
		return names[0][1:]
	}
	return id
}
