package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestPrintableEscapesWhatATerminalWouldObey(t *testing.T) {
	cases := []struct{ in, want string }{
		{"build job", "build job"},
		{"café ünïcode ✓", "café ünïcode ✓"},
		{"red\x1b[31mtext", `red\x1b[31mtext`},
		{"two\nlines", `two\nlines`},
		{"a\tcell", `a\tcell`},
		{"bell\a", `bell\a`},
		{"rtl\u202eevil", `rtl\u202eevil`},
		{"bad\xffutf8", `bad\xffutf8`},
	}
	for _, tc := range cases {
		if got := printable(tc.in); got != tc.want {
			t.Errorf("printable(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// A job name cannot add a line or a column to an operator's table.
func TestTableRowsStayOneLine(t *testing.T) {
	var out bytes.Buffer
	tb := newTable(&out, "A", "B")
	tb.row("x\ny", "1\t2\x1b[2J")
	if err := tb.flush(); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(out.String(), "\n"), "\n")
	if len(lines) != 2 || strings.ContainsRune(out.String(), 0x1b) {
		t.Fatalf("table %q", out.String())
	}
}
