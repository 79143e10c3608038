package executor

// Every object the executor makes carries io.dind-executor.* labels: they
// are how later hooks, ps, gc and the pool find it again without any state
// on disk. This file is the one list of those keys and of the roles.

// Role is a part of a sandbox; it ends each object's name and is a label.
type Role string

const (
	RoleNetwork Role = "network"
	// RolePlainNetwork joins only the daemon and the build container, for
	// a job written with TLS off (its plain endpoint listens there only).
	RolePlainNetwork Role = "plain"
	RoleDaemon       Role = "daemon"
	RoleBuild        Role = "build"
	RoleHelper       Role = "helper"
	RoleService      Role = "service"
	RoleBuilds       Role = "builds"   // volume at builds_dir
	RoleCache        Role = "cache"    // volume at cache_dir
	RoleDataRoot     Role = "dataroot" // volume at the inner daemon's /var/lib/docker
	RoleLayers       Role = "layers"   // a project's layer cache volume
	// RoleClaim is a never-started marker container that holds a slot for
	// a sandbox (a layer cache volume, or a pooled daemon).
	RoleClaim Role = "claim"
	// RolePoolFillLock is the marker container of a running pool fill.
	RolePoolFillLock Role = "pool-fill-lock"
	// RoleLastUse is the marker container recording when a project cache
	// volume was last used.
	RoleLastUse Role = "last-use"
	// RoleLayerScrub is the short-lived container that prunes a kept
	// layer cache volume to what it is kept for (layerscrub.go).
	RoleLayerScrub Role = "layer-scrub"
)

const (
	labelPrefix = "io.dind-executor."

	// On every object of a sandbox (see Identity.Labels).
	LabelManaged     = labelPrefix + "managed"
	LabelSandbox     = labelPrefix + "sandbox.id"
	LabelRole        = labelPrefix + "role"
	LabelJobID       = labelPrefix + "job.id"
	LabelJobName     = labelPrefix + "job.name"
	LabelProjectID   = labelPrefix + "project.id"
	LabelProjectPath = labelPrefix + "project.path"
	LabelPipelineID  = labelPrefix + "pipeline.id"
	LabelUserLogin   = labelPrefix + "user.login"
	LabelRunnerHost  = labelPrefix + "runner.host"
	LabelJobResponse = labelPrefix + "job.response"
	LabelJobTimeout  = labelPrefix + "job.timeout"
	// The runner process that owns the sandbox (see Owner).
	LabelOwnerPID   = labelPrefix + "owner.pid"
	LabelOwnerStart = labelPrefix + "owner.start"
	LabelOwnerPIDNS = labelPrefix + "owner.pidns"
	LabelOwnerBoot  = labelPrefix + "owner.boot"

	// LabelProjectKey is on a project's cache volumes, which carry no
	// sandbox id so that teardown leaves them for the next job.
	LabelProjectKey = labelPrefix + "project.key"
	// LabelService is on a service container: the image it was asked for.
	LabelService = labelPrefix + "service"
	// LabelImage is on every sandbox container: the image reference it was
	// asked for (it is created from the resolved id).
	LabelImage = labelPrefix + "image"

	// The warm pool.
	LabelPool    = labelPrefix + "pool"     // "true" on every object of a pooled sandbox
	LabelPoolKey = labelPrefix + "pool.key" // which DaemonSpec made it
	LabelPooled  = labelPrefix + "pooled"   // on a claim: the pooled sandbox it took

	// The layer cache: on a claim, the volume it holds and its cap.
	LabelLayerVolume   = labelPrefix + "layers.volume"
	LabelLayerMaxBytes = labelPrefix + "layers.max-bytes"

	// LabelCA is on a daemon container: the CA certificate (public, PEM)
	// the daemon's server certificate chains to, pinned when the executor
	// made it, so reading the daemon back never trusts a file the job can
	// rewrite.
	LabelCA = labelPrefix + "ca"

	// On a last-use marker: the cache volume and the time (Unix seconds).
	LabelVolume   = labelPrefix + "volume"
	LabelLastUsed = labelPrefix + "last-used"
	// LabelLayersClean is on a layer cache volume's last-use marker when
	// the volume was scrubbed after its last job: only then is it handed on.
	LabelLayersClean = labelPrefix + "layers.clean"
)

// isObjectLabel reports whether key is one the executor sets on the
// objects it makes and reads back to find them. The Engine copies an
// image's labels onto its containers, so an image carrying one could pass
// a container of the job for one the executor made (a pooled daemon, a
// claim): such images are refused (labels_test.go keeps this list whole).
func isObjectLabel(key string) bool {
	switch key {
	case LabelManaged, LabelSandbox, LabelRole, LabelJobID, LabelJobName, LabelProjectID,
		LabelProjectPath, LabelPipelineID, LabelUserLogin, LabelRunnerHost, LabelJobResponse,
		LabelJobTimeout, LabelOwnerPID, LabelOwnerStart, LabelOwnerPIDNS, LabelOwnerBoot,
		LabelProjectKey, LabelService, LabelImage, LabelPool, LabelPoolKey, LabelPooled,
		LabelLayerVolume, LabelLayerMaxBytes, LabelCA, LabelVolume, LabelLastUsed, LabelLayersClean:
		return true
	}
	return false
}
