package audit

import "time"

// Event names what happened to a sandbox.
type Event string

const (
	EventSandboxCreated   Event = "sandbox.created"
	EventPrepareFailed    Event = "sandbox.prepare_failed"
	EventStageFinished    Event = "stage.finished"
	EventSandboxProduced  Event = "sandbox.produced"
	EventSandboxDestroyed Event = "sandbox.destroyed"
)

// Record is one line of the trail. Exactly one of the event payloads is set,
// the one its Event names; Error says why an event is incomplete.
type Record struct {
	Time    time.Time `json:"time"`
	Event   Event     `json:"event"`
	Sandbox string    `json:"sandbox"`
	Job     JobRef    `json:"job"`
	// Host is the machine the executor ran on (the runner host).
	Host string `json:"host,omitempty"`

	Created   *Created   `json:"created,omitempty"`
	Stage     *Stage     `json:"stage,omitempty"`
	Produced  *Produced  `json:"produced,omitempty"`
	Destroyed *Destroyed `json:"destroyed,omitempty"`
	Error     string     `json:"error,omitempty"`
}

// JobRef says which job a sandbox served. The ids come from the runner's
// JOB_RESPONSE_FILE (or, for gc, the sandbox's labels), never from
// variables the job can set; UserLogin is GitLab's GITLAB_USER_LOGIN,
// marked ambiguous when the job's variables set it too.
type JobRef struct {
	ID          int64  `json:"id"`
	Name        string `json:"name,omitempty"`
	ProjectID   int64  `json:"project_id,omitempty"`
	ProjectPath string `json:"project_path,omitempty"`
	PipelineID  int64  `json:"pipeline_id,omitempty"`
	UserLogin   string `json:"user_login,omitempty"`
}

// Created is what a sandbox was made of and with which rights, as the
// Engine reports it after creation (read back, not what was asked for).
type Created struct {
	RunnerVersion   string `json:"runner_version,omitempty"` // as the runner reported it
	ExecutorVersion string `json:"executor_version,omitempty"`
	DaemonSecurity  string `json:"daemon_security"`
	// Engine is the Docker Engine the sandbox ran on, as [engine] names it.
	Engine string `json:"engine,omitempty"`

	Images     []Image     `json:"images"`
	Containers []Container `json:"containers"`
	Limits     Limits      `json:"limits"`
	Network    string      `json:"network"`
	MTU        int         `json:"mtu"`
	CA         CA          `json:"ca"`
	ReadyMS    int64       `json:"ready_ms"` // daemon start to first authenticated ping
	// PooledSandbox is the warm-pool sandbox whose daemon this job took
	// (its network, CA and data root); empty when the daemon was its own.
	PooledSandbox string `json:"pooled_sandbox,omitempty"`
	// LayerCache is the project's layer volume the daemon's data root is.
	LayerCache string `json:"layer_cache,omitempty"`
	// PlainNetwork is set when the job, written with TLS off, had a plain
	// endpoint (port 2375) on its daemon: the network of the daemon and the
	// build container alone, where it listened.
	PlainNetwork string `json:"plain_network,omitempty"`
}

// Image is one image a sandbox container runs.
type Image struct {
	Role        string   `json:"role"`
	Ref         string   `json:"ref"`
	ID          string   `json:"id"`
	RepoDigests []string `json:"repo_digests,omitempty"`
}

// Container is the rights the Engine gave one sandbox container.
type Container struct {
	Role        string   `json:"role"`
	Name        string   `json:"name"`
	ID          string   `json:"id"`
	Privileged  bool     `json:"privileged"`
	CapAdd      []string `json:"cap_add,omitempty"`
	CapDrop     []string `json:"cap_drop,omitempty"`
	SecurityOpt []string `json:"security_opt,omitempty"`
	DeviceRules []string `json:"device_cgroup_rules,omitempty"`
	// Devices are host devices mapped in, "host:container:perms".
	Devices []string `json:"devices,omitempty"`
	// UnmaskedPaths: no masked or read-only /proc and /sys paths
	// (systempaths=unconfined).
	UnmaskedPaths bool     `json:"unmasked_paths,omitempty"`
	Binds         []string `json:"binds,omitempty"`
	User          string   `json:"user,omitempty"`
	Limits        Limits   `json:"limits"`
}

// Limits are CPU, memory and process limits; 0 means unlimited.
type Limits struct {
	NanoCPUs    int64 `json:"nano_cpus"`
	MemoryBytes int64 `json:"memory_bytes"`
	Pids        int64 `json:"pids"`
}

// CA identifies the job's certificate authority and how long its
// certificates are valid.
type CA struct {
	Fingerprint string    `json:"sha256"`
	NotBefore   time.Time `json:"not_before"`
	NotAfter    time.Time `json:"not_after"`
}

// Stage is one run hook: a stage script in a sandbox container.
type Stage struct {
	Name        string `json:"name"`
	Container   string `json:"container"`
	ExitCode    int    `json:"exit_code"`
	DurationMS  int64  `json:"duration_ms"`
	OutputBytes int64  `json:"output_bytes"`
	Canceled    bool   `json:"canceled,omitempty"`
}

// Produced is what the job's own daemon held just before teardown. The job
// controls that daemon, so this is what it reported, not proof.
type Produced struct {
	Images     []ProducedImage     `json:"images"`
	Containers []ProducedContainer `json:"containers"`
	// Truncated is set when there were more than the trail keeps.
	Truncated bool `json:"truncated,omitempty"`
}

// ProducedImage is one image in the job's daemon: built, tagged, pulled.
type ProducedImage struct {
	ID          string    `json:"id"`
	Tags        []string  `json:"tags,omitempty"`
	RepoDigests []string  `json:"repo_digests,omitempty"`
	Created     time.Time `json:"created"`
	Size        int64     `json:"size"`
}

// ProducedContainer is one container the job ran on its daemon.
type ProducedContainer struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	Image    string `json:"image"`
	ImageID  string `json:"image_id"`
	State    string `json:"state"`
	ExitCode int    `json:"exit_code"`
}

// Destroyed is what removing a sandbox removed.
type Destroyed struct {
	By         string   `json:"by"`               // "cleanup" or "gc"
	Reason     string   `json:"reason,omitempty"` // gc: why the sandbox was taken as over
	Containers []string `json:"containers"`
	Volumes    []string `json:"volumes"`
	Networks   []string `json:"networks"`
	LivedMS    int64    `json:"lived_ms"` // from its first object's creation
}
