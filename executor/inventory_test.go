package executor

import (
	"reflect"
	"slices"
	"testing"
	"time"
)

// Labels written by one hook are read back whole by ps and gc.
func TestIdentityFromLabelsRoundTrip(t *testing.T) {
	id := Identity{
		SandboxID: "0123456789abcdef", JobID: 4711, ProjectID: 42, PipelineID: 900, ProjectPath: "g/app", JobName: "build", UserLogin: "alice",
		RunnerHost: "runner-1", JobResponseFile: "/tmp/custom-executor1/response.json", JobTimeoutSeconds: 3600,
	}
	if got := IdentityFromLabels(id.Labels(RoleBuild)); !reflect.DeepEqual(got, id) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, id)
	}
}

func TestInventoryGroupsBySandbox(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	a := Identity{SandboxID: "aaaaaaaaaaaaaaaa", JobID: 1}
	b := Identity{SandboxID: "bbbbbbbbbbbbbbbb", JobID: 2}
	inv := inventory{byID: map[SandboxID]*SandboxInfo{}}
	add := func(id Identity, role Role, created time.Time) *SandboxInfo { return inv.add(id.Labels(role), created) }

	add(b, RoleNetwork, t0.Add(time.Minute)).Networks = []string{"net-b"}
	for _, role := range []Role{RoleHelper, RoleBuild, RoleDaemon} {
		sb := add(a, role, t0.Add(time.Duration(len(role))*time.Second))
		sb.Containers = append(sb.Containers, ContainerState{Role: role})
	}
	add(a, RoleBuilds, t0) // the oldest object makes the sandbox's age
	if inv.add(map[string]string{LabelManaged: "true", LabelRole: "cache"}, t0) != nil {
		t.Error("a project cache volume was counted as a sandbox")
	}
	add(a, RoleDataRoot, time.Unix(0, 0)) // an unknown time does not count

	got := inv.sorted()
	if len(got) != 2 || got[0].Identity.SandboxID != a.SandboxID || got[1].Identity.SandboxID != b.SandboxID {
		t.Fatalf("sandboxes %+v, want a then b (oldest first)", got)
	}
	if !got[0].Created.Equal(t0) {
		t.Errorf("created %v, want the oldest object's %v", got[0].Created, t0)
	}
	var roles []Role
	for _, c := range got[0].Containers {
		roles = append(roles, c.Role)
	}
	if !slices.Equal(roles, []Role{RoleDaemon, RoleBuild, RoleHelper}) {
		t.Errorf("container order %v", roles)
	}
	if age := got[1].Age(t0.Add(2 * time.Minute)); age != time.Minute {
		t.Errorf("age %v, want 1m", age)
	}
}
