// Package stages speaks GitLab Runner's custom-executor protocol: it reads
// the runner's environment and JOB_RESPONSE_FILE, turns each hook (config,
// prepare, run, cleanup) into calls on the executor, and maps outcomes to
// the runner's exit codes and BUILD_EXIT_CODE_FILE. It knows nothing about
// Docker beyond the executor's API.
package stages
