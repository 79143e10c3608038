package runner

import (
	"os/exec"
	"strings"
	"testing"
)

func allBytes() string {
	var sb strings.Builder
	for c := 1; c < 256; c++ { // bash strings cannot hold NUL
		sb.WriteByte(byte(c))
	}
	return sb.String()
}

var escapeInputs = map[string]string{
	"empty":        "",
	"plain":        "abcXYZ019,-./@_",
	"space":        "global value",
	"quotes":       "with 'quotes' and \"double\" ones",
	"dollar":       "$dollar ${HOME} $(id) `id` $$",
	"backslashes":  `a\b\\c\'d\`,
	"newlines":     "line1\nline2\r\nline3\n",
	"tabs":         "a\tb\vc\fd\a\b",
	"unicode":      "héllo wörld – 日本 🚀",
	"control":      "\x01\x02\x1b[32;1mgreen\x1b[0;m\x7f",
	"shell syntax": "a; b && c || d | e > f < g & h # i ! j * k ? l [m] {n} ~o ^p %q =r +s :t",
	"all bytes":    allBytes(),
	"invalid utf8": "\xff\xfe\xc3",
}

// TestShellEscapeRoundTripsThroughBash is the property that matters: bash
// turns every escaped word back into exactly the input bytes.
func TestShellEscapeRoundTripsThroughBash(t *testing.T) {
	for _, esc := range []struct {
		name string
		f    Escaper
	}{{"modern", ShellEscape}, {"legacy", LegacyShellEscape}} {
		for name, in := range escapeInputs {
			t.Run(esc.name+"/"+name, func(t *testing.T) {
				word := esc.f(in)
				if strings.ContainsAny(word, "\n\r") {
					t.Errorf("escaped word spans lines: %q", word)
				}
				out, err := exec.Command("bash", "-c", "printf '%s' "+word).Output()
				if err != nil {
					t.Fatalf("bash: %v (word %q)", err, word)
				}
				if string(out) != in {
					t.Errorf("bash printed %q, want %q (word %q)", out, in, word)
				}
			})
		}
	}
}

// TestShellEscapeExact pins the runner's exact output, including what the
// runner 15.11 reference scripts show.
func TestShellEscapeExact(t *testing.T) {
	tests := []struct {
		in, modern, legacy string
	}{
		{"", "''", "''"},
		{"HEAD", "HEAD", "HEAD"},
		{"0", "0", "0"},
		{"/builds/project-0", "/builds/project-0", "$'/builds/project-0'"},
		{"git", "git", "$'git'"},
		{"global value", "$'global value'", "$'global value'"},
		{"with 'quotes' and ", `$'with \'quotes\' and '`, `$'with \'quotes\' and '`},
		{"a\\b", `$'a\\b'`, `$'a\\b'`},
		{"l1\nl2\t\r", `$'l1\nl2\t\r'`, `$'l1\nl2\t\r'`},
		{"\a\b\v\f", `$'\a\b\v\f'`, `$'\x07\x08\x0b\x0c'`},
		{"\x1b[32;1m", `$'\x1b[32;1m'`, `$'\x1b[32;1m'`},
		{"é", `$'\xc3\xa9'`, `$'\xc3\xa9'`},
		{"\x7f", `$'\x7f'`, `$'\x7f'`},
		{"u+rwX", "$'u+rwX'", "$'u+rwX'"},
		{"-R", "-R", "-R"},
		{"a^b", "$'a^b'", "$'a^b'"},
	}
	for _, tt := range tests {
		if got := ShellEscape(tt.in); got != tt.modern {
			t.Errorf("ShellEscape(%q) = %s, want %s", tt.in, got, tt.modern)
		}
		if got := LegacyShellEscape(tt.in); got != tt.legacy {
			t.Errorf("LegacyShellEscape(%q) = %s, want %s", tt.in, got, tt.legacy)
		}
	}
}

// TestLegacyEscapeMatchesReferenceNesting: the reference build script holds
// `export JOB_VAR=$'with \'quotes\' and '` inside the outer $'…' body.
func TestLegacyEscapeMatchesReferenceNesting(t *testing.T) {
	line := "export JOB_VAR=" + LegacyShellEscape("with 'quotes' and ") + "\n"
	got := LegacyShellEscape(line)
	want := `$'export JOB_VAR=$\'with \\\'quotes\\\' and \'\n'`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}
