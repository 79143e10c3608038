package runner

// Job describes a CI job the way .gitlab-ci.yml and GitLab would: it becomes
// the job payload (JOB_RESPONSE_FILE), the job variables and the stage scripts.
// Zero values get the defaults documented per field.
type Job struct {
	ID          int64  // job id (CI_JOB_ID)
	Token       string // job token (CI_JOB_TOKEN, masked when non-empty)
	Name        string // default "job"
	Stage       string // default "test"
	ProjectID   int64
	PipelineID  int64
	ProjectPath string // namespace/project, default "grp/app"; CI_PROJECT_DIR = builds_dir/<ProjectPath>

	RepoURL   string   // git remote; a local path or file:// URL works (it is read where get_sources runs)
	Ref       string   // default "main"
	RefType   string   // "branch" (default) or "tag"
	SHA       string   // commit checked out by get_sources
	BeforeSHA string   // default 40 zeros
	Refspecs  []string // passed to git fetch; nil fetches the remote's default refspec
	Depth     int      // git fetch --depth when > 0

	Timeout int // job timeout in seconds (runner_info.timeout, CI_JOB_TIMEOUT); default 3600

	Image    Image
	Services []Image

	// Variables are the job's CI/CD variables after the predefined ones, in
	// order (global, then job-level, as GitLab sends them).
	Variables []Variable

	BeforeScript []string // prepended to Script in the "script" step, as GitLab does
	Script       []string
	AfterScript  []string
	// Steps are extra steps after "script" (e.g. name "release"), run as stage step_<name>.
	Steps []Step

	Cache        []Cache
	Artifacts    []Artifact
	Dependencies []Dependency
	Credentials  []Credential

	// GitStrategy is GIT_STRATEGY: "fetch" (default; allow_git_fetch=true),
	// "clone" (the project dir is removed first) or "none"/"empty".
	GitStrategy string

	// TokenMaskPrefixes are extra token prefixes masked in the job log
	// (features.token_mask_prefixes).
	TokenMaskPrefixes []string
}

// Image is the job image or one service, as in .gitlab-ci.yml.
type Image struct {
	Name       string
	Alias      string   // services only; may hold several aliases separated by commas or spaces
	Entrypoint []string // nil = image default; []string{""} = override to none
	Command    []string // services only
	PullPolicy []string // always | if-not-present | never
	User       string   // executor_opts.docker.user
	Platform   string   // executor_opts.docker.platform
	Variables  []Variable
}

// Variable is one CI/CD variable as GitLab sends it.
type Variable struct {
	Key    string
	Value  string
	Public bool
	File   bool // the value is the file's content; scripts see a path to it
	Masked bool
	Raw    bool // not expanded
}

// Var returns a public variable, like one written in .gitlab-ci.yml.
func Var(key, value string) Variable { return Variable{Key: key, Value: value, Public: true} }

// Step is an extra job step (GitLab "release" and friends).
type Step struct {
	Name   string
	Script []string
}

// Cache is one cache: entry.
type Cache struct {
	Key          string // default "<job name>/<ref>"
	Paths        []string
	Untracked    bool
	Policy       string // pull | push | pull-push (default)
	When         string // on_success (default) | on_failure | always
	FallbackKeys []string
}

// Artifact is one artifacts: entry.
type Artifact struct {
	Name      string
	Paths     []string
	Exclude   []string
	Untracked bool
	When      string // on_success (default) | on_failure | always
	ExpireIn  string
	Type      string // artifact_type, e.g. "archive"
	Format    string // artifact_format, e.g. "zip"
}

// Dependency is an earlier job whose artifacts are downloaded.
type Dependency struct {
	ID                int64
	Token             string
	Name              string
	ArtifactsFilename string // download_artifacts runs only if set
	ArtifactsSize     int64
}

// Credential is a registry credential sent with the job.
type Credential struct {
	Type     string // default "registry"
	URL      string
	Username string
	Password string
}

const zeroSHA = "0000000000000000000000000000000000000000"

// withDefaults fills the zero fields documented on Job.
func (j Job) withDefaults() Job {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&j.Name, "job")
	def(&j.Stage, "test")
	def(&j.ProjectPath, "grp/app")
	def(&j.Ref, "main")
	def(&j.RefType, "branch")
	def(&j.BeforeSHA, zeroSHA)
	if j.Timeout <= 0 {
		j.Timeout = 3600
	}
	return j
}

// when reports whether an entry with the given when: runs on success/failure.
func whenOnSuccess(when string) bool { return when == "" || when == "on_success" || when == "always" }
func whenOnFailure(when string) bool { return when == "on_failure" || when == "always" }
