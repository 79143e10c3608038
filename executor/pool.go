package executor

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"gitlab.com/dind-executor/dind-executor/executor/containerfs"
	"gitlab.com/dind-executor/dind-executor/executor/tlsca"
)

// A warm pool keeps daemons started ahead of jobs, so prepare only has to
// create the job's containers. Each pooled daemon has its own network, CA
// and data root, serves exactly one job and is destroyed with it.
//
// A pooled daemon is claimed by creating a marker named after it (atomic
// in the Engine: two jobs cannot both succeed), then renaming the daemon to
// the job's daemon name, so every later hook finds it as the job's.
// Teardown of the job then also tears down the pooled sandbox it claimed.

const (
	// poolLifetime bounds how long a pooled daemon waits for a job; its
	// certificates stay valid that long plus the longest job.
	poolLifetime = 24 * time.Hour
	// poolCertMargin is the longest job a pooled daemon can still serve.
	poolCertMargin = 48 * time.Hour
	// poolFillStale is when a fill lock is taken to be left by a killed fill.
	poolFillStale = 10 * time.Minute
)

// poolLabels label every object of a pooled sandbox.
func poolLabels(id Identity, key string) func(Role) map[string]string {
	return func(role Role) map[string]string {
		labels := id.Labels(role)
		labels[LabelPool] = "true"
		labels[LabelPoolKey] = key
		return labels
	}
}

// poolReady counts the pooled daemons of s that no job has claimed.
func (e *docker) poolReady(ctx context.Context, s Settings) (int, error) {
	ready, err := e.readyPooled(ctx, s.PoolKey())
	return len(ready), err
}

// readyPooled lists unclaimed pooled daemons, oldest first, skipping those
// too old to serve a whole job with their certificates.
func (e *docker) readyPooled(ctx context.Context, key string) ([]container.Summary, error) {
	res, err := e.api.ContainerList(ctx, client.ContainerListOptions{Filters: client.Filters{}.
		Add("label", LabelPoolKey+"="+key).Add("label", LabelRole+"="+string(RoleDaemon)).Add("status", "running")})
	if err != nil {
		return nil, fmt.Errorf("list pooled daemons: %w", err)
	}
	var ready []container.Summary
	for _, c := range res.Items {
		id := SandboxID(c.Labels[LabelSandbox])
		unclaimed := slices.Contains(c.Names, "/"+id.Name(RoleDaemon))
		fresh := time.Since(time.Unix(c.Created, 0)) < poolLifetime
		if unclaimed && fresh {
			ready = append(ready, c)
		}
	}
	slices.SortFunc(ready, func(a, b container.Summary) int { return int(a.Created - b.Created) })
	return ready, nil
}

// fillPool starts pooled daemons until s.PoolSize unclaimed ones exist,
// and returns how many it started. One fill runs at a time per pool (every
// prepare asks for one); a fill that finds another running returns at once.
func (e *docker) fillPool(ctx context.Context, s Settings, log io.Writer) (int, error) {
	imageID, err := e.ensureImage(ctx, s.Daemon.Image, log)
	if err != nil {
		return 0, err
	}
	s.Daemon.Image.ID = imageID
	lock := marker{
		name: "dind-pool-" + s.PoolKey() + "-filling", image: s.Daemon.Image.Name, staleAfter: poolFillStale,
		labels: map[string]string{LabelManaged: "true", LabelPool: "true", LabelPoolKey: s.PoolKey(), LabelRole: string(RolePoolFillLock)},
	}
	held, err := e.createMarker(ctx, lock)
	if err != nil || !held {
		return 0, err
	}
	defer e.removeMarker(ctx, lock.name)
	ready, err := e.poolReady(ctx, s)
	if err != nil {
		return 0, err
	}
	started := 0
	for ; ready+started < s.PoolSize; started++ {
		if err := e.startPooled(ctx, s, log); err != nil {
			return started, err
		}
	}
	return started, nil
}

// startPooled makes one pooled sandbox and waits until its daemon answers.
// The client certificate stays in the daemon's DOCKER_TLS_CERTDIR/client,
// where the job that claims it reads it.
func (e *docker) startPooled(ctx context.Context, s Settings, log io.Writer) (err error) {
	id, err := newPoolIdentity()
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_, _ = e.teardown(context.WithoutCancel(ctx), id.SandboxID, nil)
		}
	}()
	p := plan{Settings: s, Spec: Spec{Identity: id, CertLifetime: poolLifetime + poolCertMargin}}
	daemon, err := e.startDaemon(ctx, p, poolLabels(id, s.PoolKey()), id.Name(RoleDataRoot), true, io.Discard)
	if err != nil {
		return err
	}
	if _, err := e.waitReady(ctx, id.SandboxID, daemon.tls, s.Daemon.ReadyTimeout); err != nil {
		return err
	}
	fmt.Fprintf(log, "pooled daemon %s ready (pool %s)\n", id.Name(RoleDaemon), s.PoolKey())
	return nil
}

// claimPooled takes the oldest ready daemon of the job's pool, or returns
// nil when there is none.
func (e *docker) claimPooled(ctx context.Context, p plan) (*jobDaemon, error) {
	ready, err := e.readyPooled(ctx, p.PoolKey())
	if err != nil {
		return nil, err
	}
	for _, c := range ready {
		poolID := SandboxID(c.Labels[LabelSandbox])
		labels := p.Identity.Labels(RoleClaim)
		labels[LabelPooled] = string(poolID)
		held, err := e.createMarker(ctx, marker{name: poolID.Name(RoleClaim), image: c.ImageID, labels: labels})
		if err != nil {
			return nil, fmt.Errorf("claim pooled daemon %s: %w", poolID.Name(RoleDaemon), err)
		}
		if !held {
			continue // another job took it first
		}
		if _, err := e.api.ContainerRename(ctx, c.ID, client.ContainerRenameOptions{NewName: p.Identity.Name(RoleDaemon)}); err != nil {
			return nil, fmt.Errorf("claim pooled daemon %s: %w", poolID.Name(RoleDaemon), err)
		}
		// No job has run in it yet: its certificate directory is still
		// what the pool put there; the CA is the one pinned in its label.
		files, err := containerfs.ReadNamed(ctx, e.api, c.ID, ClientCertDir, "cert.pem", "key.pem")
		if err != nil {
			return nil, fmt.Errorf("client certificate of pooled daemon %s: %w", poolID.Name(RoleDaemon), err)
		}
		caPEM := []byte(c.Labels[LabelCA])
		pair := tlsca.PEMPair{Cert: files["cert.pem"], Key: files["key.pem"]}
		tlsConfig, err := tlsca.ClientTLSConfig(caPEM, pair)
		if err != nil {
			return nil, fmt.Errorf("client certificate of pooled daemon %s: %w", poolID.Name(RoleDaemon), err)
		}
		return &jobDaemon{
			poolID:  poolID,
			network: poolID.Name(RoleNetwork),
			client:  pair,
			caPEM:   caPEM,
			tls:     tlsConfig,
			started: time.Unix(c.Created, 0),
		}, nil
	}
	return nil, nil
}

// claimedPool is the pooled sandbox a job's sandbox took, or "". Only the
// claim marker the executor made says so: a container made from the job's
// image carries that image's labels too, so a job could otherwise name
// another job's sandbox for its own cleanup to remove.
func (e *docker) claimedPool(ctx context.Context, id SandboxID) (SandboxID, error) {
	res, err := e.api.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: client.Filters{}.
		Add("label", LabelSandbox+"="+string(id)).Add("label", LabelRole+"="+string(RoleClaim)).Add("label", LabelPooled)})
	if err != nil {
		return "", err
	}
	for _, c := range res.Items {
		pooled := SandboxID(c.Labels[LabelPooled])
		if pooled.Validate() == nil && containerName(c.Names, "") == pooled.Name(RoleClaim) {
			return pooled, nil
		}
	}
	return "", nil
}

func newPoolIdentity() (Identity, error) {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		return Identity{}, fmt.Errorf("pool sandbox id: %w", err)
	}
	return Identity{SandboxID: SandboxID(hex.EncodeToString(b)), JobTimeoutSeconds: int64((poolLifetime + poolCertMargin) / time.Second)}, nil
}

// unclaimedPooled lists the pooled sandboxes of s that no job has taken.
func (e *docker) unclaimedPooled(ctx context.Context, s Settings) ([]SandboxID, error) {
	ready, err := e.readyPooled(ctx, s.PoolKey())
	if err != nil {
		return nil, err
	}
	ids := make([]SandboxID, 0, len(ready))
	for _, c := range ready {
		ids = append(ids, SandboxID(c.Labels[LabelSandbox]))
	}
	return ids, nil
}
