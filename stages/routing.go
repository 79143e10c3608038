package stages

import "gitlab.com/dind-executor/dind-executor/executor"

// ContainerFor says which sandbox container runs a stage. Git, cache and
// artifact stages run in the helper container, as the docker executor's
// "predefined" stages do; every other stage, including names this version
// does not know, runs in the build container.
func ContainerFor(stage string) executor.Role {
	switch stage {
	case "get_sources", "clear_worktree", "restore_cache", "download_artifacts",
		"archive_cache", "archive_cache_on_failure",
		"upload_artifacts_on_success", "upload_artifacts_on_failure",
		"cleanup_file_variables":
		return executor.RoleHelper
	default:
		return executor.RoleBuild
	}
}
