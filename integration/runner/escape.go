package runner

import "strings"

// Escaper quotes one word for bash.
type Escaper func(string) string

type escapeMode uint8

const (
	escHex     escapeMode = iota // \xNN
	escLiteral                   // copied, no quoting needed
	escQuote                     // copied, but the word must be $'…' quoted
	escNamed                     // a backslash sequence from namedEscapes
)

const hexDigits = "0123456789abcdef"

// namedEscapes are the ANSI-C backslash sequences of the runner's
// helpers/shell_escape.go (runner 19.4).
var namedEscapes = map[byte]string{
	'\a': `\a`, '\b': `\b`, '\t': `\t`, '\n': `\n`, '\v': `\v`, '\f': `\f`,
	'\r': `\r`, '\'': `\'`, '\\': `\\`,
}

var modernTable = func() (t [256]escapeMode) {
	for c := range t {
		b := byte(c)
		switch {
		case namedEscapes[b] != "":
			t[c] = escNamed
		case b >= 'a' && b <= 'z', b >= 'A' && b <= 'Z', b >= '0' && b <= '9',
			strings.IndexByte(",-./@_", b) >= 0:
			t[c] = escLiteral
		case strings.IndexByte(" !\"#$%&()*+:;<=>?[]^`{|}~", b) >= 0:
			t[c] = escQuote
		default:
			t[c] = escHex
		}
	}
	return t
}()

// ShellEscape quotes s exactly like GitLab Runner 19.4's helpers.ShellEscape:
// a word made only of [A-Za-z0-9,-./@_] is returned as is, the empty string becomes a pair of single quotes,
// anything else becomes $'…' with \a \b \t \n \v \f \r \' \\ and \xNN
// (lower-case hex) for every other control or non-ASCII byte.
func ShellEscape(s string) string {
	return escapeWith(s, &modernTable)
}

var legacyTable = func() (t [256]escapeMode) {
	// The byte ranges of the pre-16 runner (FF_USE_NEW_SHELL_ESCAPE=false),
	// including its quirk: its "LOWERCASE_Z" constant is 90 ('Z'), so
	// lower-case letters force quoting. Runner 15.11 writes `$'git'` and
	// `export CI_RUNNER_REVISION=HEAD`.
	for c := range t {
		b := byte(c)
		switch {
		case b == '\t' || b == '\n' || b == '\r' || b == '\'' || b == '\\':
			t[c] = escNamed
		case b <= 31 || b >= 127:
			t[c] = escHex
		case b <= '&', b <= '+' && b != '\'', b >= ':' && b <= '?', b == '[', b == ']', b == '^', b >= '`':
			t[c] = escQuote
		default: // , - . / 0-9 @ A-Z _
			t[c] = escLiteral
		}
	}
	return t
}()

// LegacyShellEscape quotes s like GitLab Runner 15.11 (the runner that
// produced the reference scripts): same $'…' form as ShellEscape, but lower-case
// letters force quoting and \a \b \v \f are written as \xNN.
func LegacyShellEscape(s string) string {
	return escapeWith(s, &legacyTable)
}

func escapeWith(s string, table *[256]escapeMode) string {
	if s == "" {
		return "''"
	}
	var sb strings.Builder
	sb.Grow(len(s) * 2)
	quote := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch table[c] {
		case escLiteral:
			sb.WriteByte(c)
		case escQuote:
			sb.WriteByte(c)
			quote = true
		case escNamed:
			sb.WriteString(namedEscapes[c])
			quote = true
		default:
			sb.Write([]byte{'\\', 'x', hexDigits[c>>4], hexDigits[c&0x0f]})
			quote = true
		}
	}
	if !quote {
		return sb.String()
	}
	return "$'" + sb.String() + "'"
}
