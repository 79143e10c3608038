package config

import (
	"fmt"
	"slices"
	"strings"

	"github.com/bmatcuk/doublestar/v4"
)

func (p Policy) validate(add addFunc) {
	globs := func(key string, patterns []string) {
		for i, pattern := range patterns {
			if pattern == "" || !doublestar.ValidatePattern(pattern) {
				add("%s[%d] = %q is not a valid glob pattern: use e.g. \"docker:*\" or \"registry.example.com/**\"", key, i, pattern)
			}
		}
	}
	globs("policy.allowed_images", p.AllowedImages)
	globs("policy.allowed_services", p.AllowedServices)
	for i, pp := range p.AllowedPullPolicies {
		switch pp {
		case PullAlways, PullIfNotPresent, PullNever:
		default:
			add("policy.allowed_pull_policies[%d] = %q is not a pull policy: use one of always, if-not-present, never", i, pp)
		}
	}
	for i, u := range p.AllowedUsers {
		if strings.TrimSpace(u) == "" {
			add("policy.allowed_users[%d] is empty: name a user or uid, e.g. \"1000\" or \"build\"", i)
		}
	}
	globs("policy.allowed_dind_images", p.AllowedDinDImages)
}

// CheckImage refuses a job image that matches none of allowed_images.
func (p Policy) CheckImage(image string) error {
	return matchAllowed("image", image, "policy.allowed_images", p.AllowedImages)
}

// CheckService refuses a job service that matches none of allowed_services.
func (p Policy) CheckService(image string) error {
	return matchAllowed("service", image, "policy.allowed_services", p.AllowedServices)
}

func matchAllowed(kind, name, key string, patterns []string) error {
	if len(patterns) == 0 {
		return nil
	}
	for _, pattern := range patterns {
		if ok, _ := doublestar.Match(pattern, name); ok {
			return nil
		}
	}
	return fmt.Errorf("disallowed %s %q: it matches none of %s %q (ask the runner's operator, or use an allowed %s)",
		kind, name, key, patterns, kind)
}

// DinDImageAllowed reports whether a job may have its dind service's image
// as its daemon image: only when allowed_dind_images lists it (an empty
// list allows none).
func (p Policy) DinDImageAllowed(image string) bool {
	for _, pattern := range p.AllowedDinDImages {
		if ok, _ := doublestar.Match(pattern, image); ok {
			return true
		}
	}
	return false
}

// CheckUser refuses a build-container user outside allowed_users.
func (p Policy) CheckUser(user string) error {
	if user == "" || len(p.AllowedUsers) == 0 || slices.Contains(p.AllowedUsers, user) {
		return nil
	}
	return fmt.Errorf("disallowed user %q for the build container: policy.allowed_users is %q", user, p.AllowedUsers)
}

// PullPolicies resolves the policies for one image, as the runner does:
// the job's own list if it has one, else sandbox.pull_policy; kept only
// where allowed (policy.allowed_pull_policies, else sandbox.pull_policy),
// in the requested order. An empty result is an error naming both lists.
func (c Config) PullPolicies(requested []string) ([]PullPolicy, error) {
	want := c.Sandbox.PullPolicy
	source := "sandbox.pull_policy"
	if len(requested) > 0 {
		want = make([]PullPolicy, len(requested))
		for i, r := range requested {
			want[i] = PullPolicy(r)
		}
		source = "the job's pull_policy"
	}
	allowed := c.Policy.AllowedPullPolicies
	allowedKey := "policy.allowed_pull_policies"
	if len(allowed) == 0 {
		allowed, allowedKey = c.Sandbox.PullPolicy, "sandbox.pull_policy"
	}
	var out []PullPolicy
	for _, p := range want {
		if slices.Contains(allowed, p) && !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("pull_policy %q (from %s) is not one of the allowed pull policies %q (%s)", want, source, allowed, allowedKey)
	}
	return out, nil
}
