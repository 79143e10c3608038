package config

import (
	"strings"
	"testing"
)

// A value that does not decode (wrong type, bad duration) is one problem
// among the others: the rest of the file is still decoded and checked, and
// every problem comes back in the same error.
func TestDecodeErrorsDoNotHideOtherProblems(t *testing.T) {
	tests := []struct {
		name string
		toml string
		want [][]string // per problem, in order: substrings it must contain
	}{
		{
			name: "type error and an invalid value",
			toml: "[sandbox]\nmtu = \"1500\"\ndaemon_security = \"root\"\n",
			want: [][]string{
				{"sandbox.mtu", "line 2", "string", "integer"},
				{"sandbox.daemon_security", `"root"`},
			},
		},
		{
			name: "bad duration, unknown key and an invalid value in another table",
			toml: "[sandbox]\nready_timeout = \"a minute\"\ndind_imag = \"x\"\n[limits]\npids = -1\n",
			want: [][]string{
				{`unknown key "sandbox.dind_imag"`},
				{"sandbox.ready_timeout", `"a minute"`, `"60s"`},
				{"limits.pids = -1"},
			},
		},
		{
			name: "type errors in several tables",
			toml: "[sandbox]\npull_policy = \"always\"\nwait_for_services_timeout = 30\n[limits]\ncpus = \"2\"\n[pool]\nsize = true\n[log]\nlevel = 3\n",
			want: [][]string{
				{"sandbox.pull_policy", "string", "slice"},
				{"sandbox.wait_for_services_timeout", `"30"`, `"60s"`},
				{"limits.cpus", "string", "float"},
				{"pool.size", "bool", "integer"},
				{"log.level", "int64", "string"},
			},
		},
		{
			name: "a table written as a value",
			toml: "sandbox = 5\nlimits = [1]\n[log]\nformat = \"xml\"\n",
			want: [][]string{
				{"sandbox", "integer", "not a table", "[sandbox]"},
				{"limits", "array", "not a table", "[limits]"},
				{"log.format", `"xml"`},
			},
		},
		{
			name: "an array of tables where a table belongs",
			toml: "[[engine]]\nhost = \"tcp://a:1\"\n[cache]\nlayers = \"global\"\n",
			want: [][]string{
				{"engine", "array of tables", "not a table"},
				{"cache.layers", `"global"`},
			},
		},
		{
			// The list is kept whole or not at all: its valid first entry
			// must not reach Validate as a list with an empty second one.
			name: "half a list is not kept",
			toml: "[sandbox]\npull_policy = [\"never\", 5]\n",
			want: [][]string{
				{"sandbox.pull_policy", "int64", "string"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.toml))
			if err == nil {
				t.Fatalf("Parse succeeded, want %d problems; got %+v", len(tt.want), c)
			}
			got := problems(err)
			if len(got) != len(tt.want) {
				t.Fatalf("got %d problems, want %d:\n%v", len(got), len(tt.want), err)
			}
			for i, subs := range tt.want {
				for _, s := range subs {
					if !strings.Contains(got[i].Error(), s) {
						t.Errorf("problem %d = %q\nwant it to contain %q", i, got[i], s)
					}
				}
			}
		})
	}
}
