package config

import (
	"os"
	"reflect"
	"strings"
	"testing"
)

// FuzzParse checks that Parse never panics on operator input, that every
// error has text to show, and that whatever it accepts is a valid Config.
func FuzzParse(f *testing.F) {
	for _, prefix := range []string{"valid-", "invalid-"} {
		for _, path := range fixtures(f, prefix) {
			data, err := os.ReadFile(path)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data)
			f.Add(data[:len(data)/2]) // truncated mid-file
		}
	}
	for _, s := range []string{
		"",
		"\x00\xff\xfe",
		"[",
		"[[sandbox]]\n",
		"sandbox = 5\n",
		"sandbox.volumes = [[1], {a = 2}]\n",
		"[sandbox]\nready_timeout = {}\n",
		"[sandbox]\nready_timeout = 1e308\n",
		"[sandbox]\npull_policy = [1, true]\n",
		"[limits]\ncpus = -0.0\nmemory = \"99999999999999999999p\"\n",
		"[limits]\npids = 9223372036854775807\n",
		`"sandbox.dind_image" = "x"` + "\n",
		"[engine]\nhost = \"tcp://[::1\"\n",
		strings.Repeat("[a]\n", 100),
	} {
		f.Add([]byte(s))
	}

	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data)
		if err != nil {
			if strings.TrimSpace(err.Error()) == "" {
				t.Fatalf("Parse(%q) returned an error with no text", data)
			}
			for _, p := range problems(err) {
				if strings.TrimSpace(p.Error()) == "" {
					t.Fatalf("Parse(%q) returned an empty problem in %q", data, err)
				}
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Parse(%q) accepted a config that does not validate: %v", data, err)
		}
		if c.Limits.NanoCPUs() < 0 || c.Limits.MemoryBytes < 0 {
			t.Fatalf("Parse(%q) gave negative limits: %+v", data, c.Limits)
		}
		if c.Limits.Memory != "" && c.Limits.MemoryBytes == 0 {
			t.Fatalf("Parse(%q) left MemoryBytes unset for memory %q", data, c.Limits.Memory)
		}
		again, err := Parse(data)
		if err != nil || !reflect.DeepEqual(c, again) {
			t.Fatalf("Parse(%q) is not deterministic: %+v then %+v, %v", data, c, again, err)
		}
	})
}
