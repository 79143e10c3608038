package stages

import (
	"strings"
	"testing"
)

// GitLab sends a pipeline's own GITLAB_USER_LOGIN (from .gitlab-ci.yml)
// before the user's: the record must not show the pipeline's alone.
func TestUserLoginIsGitLabsAndSaysWhenTheJobSetAnother(t *testing.T) {
	v := func(k, val string) JobVariable { return JobVariable{Key: k, Value: val, Public: true} }
	tests := []struct {
		name string
		vars []JobVariable
		want string
	}{
		{"none", []JobVariable{v("CI_JOB_ID", "1")}, ""},
		{"GitLab's alone", []JobVariable{v("GITLAB_USER_LOGIN", "alice")}, "alice"},
		{"a yaml variable before GitLab's", []JobVariable{v("GITLAB_USER_LOGIN", "admin"), v("CI_JOB_ID", "1"), v("GITLAB_USER_LOGIN", "alice")},
			"alice (ambiguous: the job's variables also set GITLAB_USER_LOGIN to admin)"},
		{"the same value twice", []JobVariable{v("GITLAB_USER_LOGIN", "alice"), v("GITLAB_USER_LOGIN", "alice")}, "alice"},
		{"many others, bounded", []JobVariable{v("GITLAB_USER_LOGIN", "a"), v("GITLAB_USER_LOGIN", "b"), v("GITLAB_USER_LOGIN", "c"),
			v("GITLAB_USER_LOGIN", "d"), v("GITLAB_USER_LOGIN", "alice")},
			"alice (ambiguous: the job's variables also set GITLAB_USER_LOGIN to a, b, c)"},
		{"a long value is cut", []JobVariable{v("GITLAB_USER_LOGIN", strings.Repeat("x", 10000))}, strings.Repeat("x", maxLoginBytes)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			job := &JobResponse{Variables: tc.vars}
			if got := job.userLogin(); got != tc.want {
				t.Errorf("userLogin() = %q, want %q", got, tc.want)
			}
		})
	}
}
