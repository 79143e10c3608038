package config

import (
	"slices"
	"strings"
	"testing"
)

func TestCheckImage(t *testing.T) {
	p := Policy{AllowedImages: []string{"docker:*", "registry.example.com/**"}, AllowedServices: []string{"postgres:1?"}}
	cases := []struct {
		name, image string
		service     bool
		wantErr     string
	}{
		{"plain match", "docker:27-cli", false, ""},
		{"doublestar across paths", "registry.example.com/grp/sub/app:1", false, ""},
		{"star does not cross a slash", "docker:27/evil", false, "policy.allowed_images"},
		{"other image", "alpine:3", false, `disallowed image "alpine:3"`},
		{"service allowed", "postgres:15", true, ""},
		{"service refused", "postgres:9", true, "policy.allowed_services"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			check := p.CheckImage
			if tc.service {
				check = p.CheckService
			}
			err := check(tc.image)
			if tc.wantErr == "" && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
	if err := (Policy{}).CheckImage("anything:at-all"); err != nil {
		t.Errorf("an empty allow-list refused an image: %v", err)
	}
}

func TestCheckUser(t *testing.T) {
	p := Policy{AllowedUsers: []string{"1000", "build"}}
	for user, ok := range map[string]bool{"": true, "1000": true, "build": true, "root": false, "0": false} {
		if err := p.CheckUser(user); (err == nil) != ok {
			t.Errorf("CheckUser(%q) = %v, want allowed=%v", user, err, ok)
		}
	}
}

func TestPullPolicies(t *testing.T) {
	cases := []struct {
		name      string
		runner    []PullPolicy
		allowed   []PullPolicy
		requested []string
		want      []PullPolicy
		wantErr   string
	}{
		{"runner default", []PullPolicy{PullAlways}, nil, nil, []PullPolicy{PullAlways}, ""},
		{"job narrows within runner list", []PullPolicy{PullAlways, PullIfNotPresent}, nil, []string{"if-not-present"}, []PullPolicy{PullIfNotPresent}, ""},
		{"job cannot widen", []PullPolicy{PullAlways}, nil, []string{"never"}, nil, `not one of the allowed pull policies ["always"] (sandbox.pull_policy)`},
		{"allowed list wins over runner list", []PullPolicy{PullAlways}, []PullPolicy{PullNever, PullIfNotPresent}, []string{"always", "never"}, []PullPolicy{PullNever}, ""},
		{"job order kept", []PullPolicy{PullAlways}, []PullPolicy{PullAlways, PullIfNotPresent}, []string{"if-not-present", "always"}, []PullPolicy{PullIfNotPresent, PullAlways}, ""},
		{"runner default outside allowed", []PullPolicy{PullAlways}, []PullPolicy{PullNever}, nil, nil, "policy.allowed_pull_policies"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			c.Sandbox.PullPolicy = tc.runner
			c.Policy.AllowedPullPolicies = tc.allowed
			got, err := c.PullPolicies(tc.requested)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("policies %v, want %v", got, tc.want)
			}
		})
	}
}

// A job pins its daemon image only where the operator lists it; an empty
// list allows none (the daemon container is the privileged one).
func TestDinDImageAllowed(t *testing.T) {
	p := Policy{AllowedDinDImages: []string{"docker:2[4-7].*-dind", "registry.example.com/mirror/docker:*-dind"}}
	for image, want := range map[string]bool{
		"docker:24.0.5-dind":                           true,
		"docker:27.3-dind":                             true,
		"docker:23.0.1-dind":                           false,
		"docker:24.0.5-dind-rootless":                  false,
		"docker:dind":                                  false,
		"registry.example.com/mirror/docker:26-dind":   true,
		"registry.example.com/mirror/x/docker:26-dind": false,
	} {
		if got := p.DinDImageAllowed(image); got != want {
			t.Errorf("DinDImageAllowed(%q) = %v, want %v", image, got, want)
		}
	}
	if (Policy{}).DinDImageAllowed("docker:24.0.5-dind") {
		t.Error("an empty allowed_dind_images allowed a pinned daemon image")
	}
}
