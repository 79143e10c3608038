package executor

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"gitlab.com/dind-executor/dind-executor/executor/tlsca"
)

// A warm pool keeps daemons started ahead of jobs, so prepare only has to
// create the job's containers. Each pooled daemon has its own network, CA
// and data root, serves exactly one job and is destroyed with it.
//
// A pooled daemon is claimed by creating a container named after it (an
// atomic operation in the Engine: two jobs cannot both succeed), then
// renaming the daemon to the job's daemon name, so every later hook finds
// it as the job's. Teardown of the job then also tears down the pooled
// sandbox it claimed.

// PoolSpec is what a pooled daemon is made of: the part of a Spec known
// before any job is.
type PoolSpec struct {
	DaemonImage    ImageRef
	DaemonSecurity DaemonSecurity
	MTU            int
	ReadyTimeout   time.Duration
	Limits         Limits
}

const (
	// poolLifetime bounds how long a pooled daemon waits for a job; its
	// certificates stay valid that long plus the longest job.
	poolLifetime = 24 * time.Hour
	// poolCertMargin is the longest job a pooled daemon can still serve.
	poolCertMargin = 48 * time.Hour

	LabelPool    = labelPrefix + "pool"     // "true" on every object of a pooled sandbox
	LabelPoolKey = labelPrefix + "pool.key" // which PoolSpec made it
	LabelPooled  = labelPrefix + "pooled"   // on a claim: the pooled sandbox it took
)

// key tells apart pools of different daemon settings: a job only takes a
// daemon made the way its own config says.
func (p PoolSpec) Key() string {
	sum := sha256.Sum256(fmt.Appendf(nil, "%s|%s|%s|%d|%d|%d|%d", p.DaemonImage.Name, p.DaemonImage.Platform,
		p.DaemonSecurity, p.MTU, p.Limits.NanoCPUs, p.Limits.MemoryBytes, p.Limits.Pids))
	return hex.EncodeToString(sum[:6])
}

// PoolSpecOf is the pool a job's Spec can take a daemon from.
func PoolSpecOf(s Spec) PoolSpec {
	return PoolSpec{DaemonImage: s.DaemonImage, DaemonSecurity: s.DaemonSecurity, MTU: s.MTU, ReadyTimeout: s.ReadyTimeout, Limits: s.Limits}
}

func poolLabels(id Identity, role Role, key string) map[string]string {
	labels := id.Labels(role)
	labels[LabelPool] = "true"
	labels[LabelPoolKey] = key
	return labels
}

// PoolReady counts the pooled daemons of p that no job has claimed.
func (e *Engine) PoolReady(ctx context.Context, p PoolSpec) (int, error) {
	ready, err := e.readyPooled(ctx, p.Key())
	return len(ready), err
}

// readyPooled lists unclaimed pooled daemons, oldest first, skipping those
// too old to serve a whole job with their certificates.
func (e *Engine) readyPooled(ctx context.Context, key string) ([]container.Summary, error) {
	res, err := e.api.ContainerList(ctx, client.ContainerListOptions{Filters: client.Filters{}.
		Add("label", LabelPoolKey+"="+key).Add("label", LabelRole+"="+string(RoleDaemon)).Add("status", "running")})
	if err != nil {
		return nil, fmt.Errorf("list pooled daemons: %w", err)
	}
	var ready []container.Summary
	for _, c := range res.Items {
		id := Identity{SandboxID: c.Labels[LabelSandbox]}
		unclaimed := slices.Contains(c.Names, "/"+id.Name(RoleDaemon))
		fresh := time.Since(time.Unix(c.Created, 0)) < poolLifetime
		if unclaimed && fresh {
			ready = append(ready, c)
		}
	}
	slices.SortFunc(ready, func(a, b container.Summary) int { return int(a.Created - b.Created) })
	return ready, nil
}

// FillPool starts pooled daemons until size unclaimed ones exist, and
// returns how many it started. One fill runs at a time per pool (every
// prepare asks for one); a fill that finds another running returns at once.
func (e *Engine) FillPool(ctx context.Context, p PoolSpec, size int, log io.Writer) (int, error) {
	if _, err := e.EnsureImage(ctx, p.DaemonImage, log); err != nil {
		return 0, err
	}
	unlock, err := e.lockPoolFill(ctx, p)
	if err != nil || unlock == nil {
		return 0, err
	}
	defer unlock()
	ready, err := e.PoolReady(ctx, p)
	if err != nil {
		return 0, err
	}
	started := 0
	for ; ready+started < size; started++ {
		if err := e.startPooled(ctx, p, log); err != nil {
			return started, err
		}
	}
	return started, nil
}

// poolFillStale is when a fill lock is taken to be left by a killed fill.
const poolFillStale = 10 * time.Minute

// lockPoolFill takes the pool's fill lock: a never-started container whose
// name is the lock (creation is atomic). It returns nil, nil when another
// fill holds it.
func (e *Engine) lockPoolFill(ctx context.Context, p PoolSpec) (func(), error) {
	name := "dind-pool-" + p.Key() + "-filling"
	create := func() error {
		_, err := e.api.ContainerCreate(ctx, client.ContainerCreateOptions{
			Name: name,
			Config: &container.Config{Image: p.DaemonImage.Name, Entrypoint: []string{"true"},
				Labels: map[string]string{LabelManaged: "true", LabelPool: "true", LabelPoolKey: p.Key(), LabelRole: "pool-fill-lock"}},
			HostConfig: &container.HostConfig{NetworkMode: "none"},
		})
		return err
	}
	err := create()
	if cerrdefs.IsConflict(err) {
		held, ierr := e.api.ContainerInspect(ctx, name, client.ContainerInspectOptions{})
		created, perr := time.Parse(time.RFC3339Nano, held.Container.Created)
		if ierr != nil || perr != nil || time.Since(created) < poolFillStale {
			return nil, nil
		}
		_, _ = e.api.ContainerRemove(ctx, name, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
		err = create()
		if cerrdefs.IsConflict(err) {
			return nil, nil
		}
	}
	if err != nil {
		return nil, fmt.Errorf("take the pool's fill lock %s: %w", name, err)
	}
	return func() {
		_, _ = e.api.ContainerRemove(context.WithoutCancel(ctx), name, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
	}, nil
}

// startPooled makes one pooled sandbox: network, data root, daemon with
// its server certificate and, for the job that will claim it, the client
// certificate in the daemon's own DOCKER_TLS_CERTDIR/client.
func (e *Engine) startPooled(ctx context.Context, p PoolSpec, log io.Writer) (err error) {
	id, err := newPoolIdentity()
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_, _ = e.Teardown(context.WithoutCancel(ctx), id.SandboxID)
		}
	}()
	key := p.Key()
	certs, err := tlsca.New(id.SandboxID, poolLifetime+poolCertMargin)
	if err != nil {
		return fmt.Errorf("make pooled daemon certificates: %w", err)
	}
	mtu := p.MTU
	if mtu == 0 {
		if mtu, err = e.outerMTU(ctx); err != nil {
			return err
		}
	}
	network, err := e.createNetworkLabelled(ctx, id.Name(RoleNetwork), mtu, poolLabels(id, RoleNetwork, key))
	if err != nil {
		return err
	}
	if _, err := e.createVolume(ctx, id.Name(RoleDataRoot), poolLabels(id, RoleDataRoot, key)); err != nil {
		return err
	}
	spec := Spec{Identity: id, DaemonImage: p.DaemonImage, DaemonSecurity: p.DaemonSecurity, Limits: p.Limits}
	entrypoint, err := e.imageEntrypoint(ctx, p.DaemonImage.Name)
	if err != nil {
		return err
	}
	daemon := daemonContainer(spec, network, mtu, id.Name(RoleDataRoot), entrypoint)
	daemon.config.Labels = poolLabels(id, RoleDaemon, key)
	daemonID, err := e.createContainer(ctx, daemon)
	if err != nil {
		return err
	}
	if err := e.copyFiles(ctx, daemonID, append(daemonCertFiles(certs), clientCertFiles(certs)...), false); err != nil {
		return err
	}
	if err := e.startContainer(ctx, daemonID, daemon); err != nil {
		return err
	}
	tlsConfig, err := certs.ClientTLSConfig()
	if err != nil {
		return err
	}
	if err := e.waitReady(ctx, id, tlsConfig, p.ReadyTimeout); err != nil {
		return err
	}
	fmt.Fprintf(log, "pooled daemon %s ready (pool %s)\n", daemon.name, key)
	return nil
}

// claimPooled takes the oldest ready daemon of the job's pool, or returns
// nil when there is none.
func (e *Engine) claimPooled(ctx context.Context, s Spec) (*jobDaemon, error) {
	key := PoolSpecOf(s).Key()
	ready, err := e.readyPooled(ctx, key)
	if err != nil {
		return nil, err
	}
	for _, c := range ready {
		poolID := Identity{SandboxID: c.Labels[LabelSandbox]}
		labels := s.Identity.Labels(RoleClaim)
		labels[LabelPooled] = poolID.SandboxID
		_, err := e.api.ContainerCreate(ctx, client.ContainerCreateOptions{
			Name:       poolID.Name(RoleClaim),
			Config:     &container.Config{Image: c.ImageID, Entrypoint: []string{"true"}, Labels: labels},
			HostConfig: &container.HostConfig{NetworkMode: "none"},
		})
		if cerrdefs.IsConflict(err) {
			continue // another job took it first
		}
		if err != nil {
			return nil, fmt.Errorf("claim pooled daemon %s: %w", poolID.Name(RoleDaemon), err)
		}
		if _, err := e.api.ContainerRename(ctx, c.ID, client.ContainerRenameOptions{NewName: s.Identity.Name(RoleDaemon)}); err != nil {
			return nil, fmt.Errorf("claim pooled daemon %s: %w", poolID.Name(RoleDaemon), err)
		}
		files, err := e.readFiles(ctx, c.ID, ClientCertDir)
		if err != nil {
			return nil, fmt.Errorf("client certificate of pooled daemon %s: %w", poolID.Name(RoleDaemon), err)
		}
		pair := tlsca.PEMPair{Cert: files["cert.pem"], Key: files["key.pem"]}
		tlsConfig, err := tlsca.ClientTLSConfig(files["ca.pem"], pair)
		if err != nil {
			return nil, fmt.Errorf("client certificate of pooled daemon %s: %w", poolID.Name(RoleDaemon), err)
		}
		return &jobDaemon{
			poolID:  poolID.SandboxID,
			network: poolID.Name(RoleNetwork),
			client:  pair,
			caPEM:   files["ca.pem"],
			tls:     tlsConfig,
			started: time.Unix(c.Created, 0),
		}, nil
	}
	return nil, nil
}

// claimedPool is the pooled sandbox a job's sandbox took, or "".
func (e *Engine) claimedPool(ctx context.Context, sandboxID string) (string, error) {
	res, err := e.api.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: client.Filters{}.
		Add("label", LabelSandbox+"="+sandboxID).Add("label", LabelPooled)})
	if err != nil || len(res.Items) == 0 {
		return "", err
	}
	return res.Items[0].Labels[LabelPooled], nil
}

func newPoolIdentity() (Identity, error) {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		return Identity{}, fmt.Errorf("pool sandbox id: %w", err)
	}
	return Identity{SandboxID: hex.EncodeToString(b), JobTimeoutSeconds: int64((poolLifetime + poolCertMargin) / time.Second)}, nil
}

// DrainPool tears down every pooled sandbox of p that no job has claimed,
// e.g. after the operator changed the daemon settings.
func (e *Engine) DrainPool(ctx context.Context, p PoolSpec) (Removed, error) {
	ready, err := e.readyPooled(ctx, p.Key())
	if err != nil {
		return Removed{}, err
	}
	var all Removed
	var errs []error
	for _, c := range ready {
		removed, err := e.Teardown(ctx, c.Labels[LabelSandbox])
		all.Containers = append(all.Containers, removed.Containers...)
		all.Volumes = append(all.Volumes, removed.Volumes...)
		all.Networks = append(all.Networks, removed.Networks...)
		errs = append(errs, err)
	}
	return all, errors.Join(errs...)
}
