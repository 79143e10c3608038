package executor

import (
	"errors"
	"strings"
	"testing"
)

func TestChoosePlacesOnTheLeastLoadedEngine(t *testing.T) {
	const gib = 1 << 30
	down := errors.New("connection refused")
	tests := []struct {
		name   string
		cands  []candidate
		want   string // engine chosen; "" when none can be
		whyHas []string
		errHas []string
	}{
		{"fewer sandboxes wins", []candidate{
			{engine: "a", load: engineLoad{Sandboxes: 3, MemTotal: 16 * gib}},
			{engine: "b", load: engineLoad{Sandboxes: 1, MemTotal: 16 * gib}},
		}, "b", []string{"Docker Engine b (1 sandboxes, 16.0 GiB)", "least loaded of 2 answering"}, nil},
		{"more memory carries more sandboxes", []candidate{
			{engine: "small", load: engineLoad{Sandboxes: 1, MemTotal: 8 * gib}},
			{engine: "big", load: engineLoad{Sandboxes: 2, MemTotal: 32 * gib}},
		}, "big", nil, nil},
		{"idle bigger Engine over idle smaller", []candidate{
			{engine: "small", load: engineLoad{MemTotal: 8 * gib}},
			{engine: "big", load: engineLoad{MemTotal: 16 * gib}},
		}, "big", nil, nil},
		{"an Engine that does not answer is skipped and said", []candidate{
			{engine: "a", err: down},
			{engine: "b", load: engineLoad{Sandboxes: 9, MemTotal: 16 * gib}},
		}, "b", []string{"least loaded of 1 answering", "a skipped (connection refused)"}, nil},
		{"unknown memory counts as 1 GiB", []candidate{
			{engine: "a", load: engineLoad{Sandboxes: 1}},
			{engine: "b", load: engineLoad{Sandboxes: 0}},
		}, "b", nil, nil},
		{"none answers", []candidate{{engine: "a", err: down}, {engine: "b", err: down}}, "",
			nil, []string{"none of the 2 Docker Engines of [engine] hosts answers", "a skipped (connection refused)", "b skipped"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			best, why, err := choose("0123456789abcdef", tt.cands)
			if tt.want == "" {
				if err == nil {
					t.Fatalf("chose %d (%s), want an error", best, why)
				}
				for _, s := range tt.errHas {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q lacks %q", err, s)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := tt.cands[best].engine; got != tt.want {
				t.Errorf("chose %s, want %s (%s)", got, tt.want, why)
			}
			for _, s := range tt.whyHas {
				if !strings.Contains(why, s) {
					t.Errorf("why %q lacks %q", why, s)
				}
			}
		})
	}
}

// Jobs that start together see the same loads: ties must not all go to
// the first Engine.
func TestChooseSpreadsTiesOverEngines(t *testing.T) {
	cands := []candidate{{engine: "unix:///a.sock"}, {engine: "unix:///b.sock"}, {engine: "unix:///c.sock"}}
	count := map[string]int{}
	for i := range 300 {
		id := SandboxID(strings.Repeat("0", 12) + string(rune('a'+i%26)) + string(rune('a'+i/26%26)) + "00")
		best, _, err := choose(id, cands)
		if err != nil {
			t.Fatal(err)
		}
		count[cands[best].engine]++
		again, _, _ := choose(id, cands)
		if again != best {
			t.Fatalf("sandbox %s placed on %d then %d: the tie-break must be stable", id, best, again)
		}
	}
	for _, c := range cands {
		if count[c.engine] < 60 {
			t.Errorf("%s got %d of 300 tied placements, want about 100: %v", c.engine, count[c.engine], count)
		}
	}
}
