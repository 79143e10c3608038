package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"unicode"
	"unicode/utf8"
)

// table prints the operator commands' tables. Many cells are the job's
// words (job name, project path, image tags, error text): each is printed
// with control characters escaped, so a job cannot move the cursor, clear
// the screen or forge lines in an operator's terminal.
type table struct{ tw *tabwriter.Writer }

func newTable(out io.Writer, header ...string) *table {
	t := &table{tw: tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)}
	fmt.Fprintln(t.tw, strings.Join(header, "\t"))
	return t
}

// row prints one line; each cell is formatted with %v, then escaped.
func (t *table) row(cells ...any) {
	out := make([]string, len(cells))
	for i, c := range cells {
		out[i] = printable(fmt.Sprint(c))
	}
	fmt.Fprintln(t.tw, strings.Join(out, "\t"))
}

func (t *table) flush() error { return t.tw.Flush() }

// engineColumn is the ENGINE column of the operator's tables, shown when
// the runner has several Engines ([engine] hosts); with one it is noise.
type engineColumn bool

func (c engineColumn) header(h ...string) []string {
	if c {
		return append(h, "ENGINE")
	}
	return h
}

func (c engineColumn) cells(engine string, cells ...any) []any {
	if c {
		return append(cells, engine)
	}
	return cells
}

// printable escapes control characters (tabs and newlines included: they
// are the table's own structure), bidirectional overrides and invalid
// UTF-8, as Go escapes.
func printable(s string) string {
	var b strings.Builder
	for len(s) > 0 {
		r, size := utf8.DecodeRuneInString(s)
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[0])
		case unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) || r == '\u2028' || r == '\u2029':
			q := strconv.QuoteRuneToASCII(r)
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteRune(r)
		}
		s = s[size:]
	}
	return b.String()
}
