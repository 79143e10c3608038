package runner

import (
	"fmt"
	"path"
	"strings"
)

// ScriptStyle selects the outer shape of the generated stage scripts.
type ScriptStyle int

const (
	// StyleRunner15 is the shape of the reference scripts written by GitLab
	// Runner 15.11: a pipefail probe, errexit, noclobber off, the body as one
	// $'…' word passed to `: | eval`, then `exit 0`. Words are quoted with
	// LegacyShellEscape. This is the default.
	StyleRunner15 ScriptStyle = iota
	// StyleRunner19 is runner 19.4's default shape: a TERM trap, the body
	// evaluated in a subshell that re-installs the trap and reads /dev/null,
	// words quoted with ShellEscape.
	StyleRunner19
)

const (
	ansiBoldGreen = "\033[32;1m"
	ansiYellow    = "\033[0;33m"
	ansiBoldCyan  = "\033[36;1m"
	ansiBoldRed   = "\033[31;1m"
	ansiReset     = "\033[0;m"
	ansiClear     = "\033[0K"
)

// bashTermTrap is runner 19.4's bashExitOnScriptTerminationSignal.
const bashTermTrap = "trap exit 1 TERM"

// escaper returns the word quoting used by the style.
func (s ScriptStyle) escaper() Escaper {
	if s == StyleRunner19 {
		return ShellEscape
	}
	return LegacyShellEscape
}

// bashWriter accumulates a stage body the way the runner's BashWriter does.
type bashWriter struct {
	sb      strings.Builder
	indent  int
	esc     Escaper
	tmpPath string // <PD>.tmp, where file variables live
}

func newBashWriter(style ScriptStyle, tmpPath string) *bashWriter {
	return &bashWriter{esc: style.escaper(), tmpPath: tmpPath}
}

func (w *bashWriter) Line(text string) {
	w.sb.WriteString(strings.Repeat("  ", w.indent) + text + "\n")
}

func (w *bashWriter) Linef(format string, args ...any) { w.Line(fmt.Sprintf(format, args...)) }

// command quotes the command word with the style's escaper and every
// argument with ShellEscape: runner 15.11 writes `$'git' fetch origin` and
// `$'chmod' -R $'u+rwX' /builds/project-0`.
func (w *bashWriter) command(cmd string, args ...string) string {
	words := []string{w.esc(cmd)}
	for _, a := range args {
		words = append(words, ShellEscape(a))
	}
	return strings.Join(words, " ")
}

func (w *bashWriter) Command(cmd string, args ...string) { w.Line(w.command(cmd, args...)) }

func (w *bashWriter) IfCmd(cmd string, args ...string) {
	w.Linef("if %s >/dev/null 2>&1; then", w.command(cmd, args...))
	w.indent++
}

func (w *bashWriter) IfCmdWithOutput(cmd string, args ...string) {
	w.Linef("if %s; then", w.command(cmd, args...))
	w.indent++
}

func (w *bashWriter) IfDirectory(p string) {
	w.Linef("if [ -d %q ]; then", p)
	w.indent++
}

func (w *bashWriter) Else() {
	w.indent--
	w.Line("else")
	w.indent++
}

func (w *bashWriter) EndIf() {
	w.indent--
	w.Line("fi")
}

func (w *bashWriter) Cd(p string)    { w.Command("cd", p) }
func (w *bashWriter) MkDir(p string) { w.Command("mkdir", "-p", p) }
func (w *bashWriter) RmFile(p string) {
	w.Command("rm", "-f", p)
}

func (w *bashWriter) RmDir(p string) {
	w.IfDirectory(p)
	w.Command("chmod", "-R", "u+rwX", p)
	w.EndIf()
	w.Command("rm", "-r", "-f", p)
}

func (w *bashWriter) Noticef(format string, args ...any) {
	w.Line("echo " + w.esc(ansiBoldGreen+fmt.Sprintf(format, args...)+ansiReset))
}

func (w *bashWriter) Warningf(format string, args ...any) {
	w.Line("echo " + w.esc(ansiYellow+fmt.Sprintf(format, args...)+ansiReset))
}

func (w *bashWriter) EmptyLine() { w.Line("echo") }

// TmpFile is the path of a scratch file under <PD>.tmp.
func (w *bashWriter) TmpFile(name string) string { return path.Join(w.tmpPath, name) }

// Variable exports one job variable. File variables are written to
// <PD>.tmp/KEY and the variable holds that path, as the runner does.
func (w *bashWriter) Variable(v Variable) {
	if v.File {
		file := w.TmpFile(v.Key)
		w.Linef("mkdir -p %q", w.tmpPath)
		w.Linef("printf '%%s' %s > %q", w.esc(v.Value), file)
		w.Linef("export %s=%q", w.esc(v.Key), file)
		return
	}
	w.Linef("export %s=%s", w.esc(v.Key), w.esc(v.Value))
}

// Finish wraps the body into a complete script file.
func (w *bashWriter) Finish(style ScriptStyle) string {
	var buf strings.Builder
	buf.WriteString("#!/usr/bin/env bash\n\n")
	if style == StyleRunner19 {
		buf.WriteString(bashTermTrap + "\n\n")
		buf.WriteString(`case "$(set -o)" in *"pipefail"*) set -o pipefail;; esac; set -o errexit` + "\n")
		buf.WriteString("set +o noclobber\n")
		buf.WriteString("(" + bashTermTrap + "; eval " + w.esc(w.sb.String()) + ") < /dev/null\n")
	} else {
		buf.WriteString("if set -o | grep pipefail > /dev/null; then set -o pipefail; fi; set -o errexit\n")
		buf.WriteString("set +o noclobber\n")
		buf.WriteString(": | eval " + w.esc(w.sb.String()) + "\n")
	}
	buf.WriteString("exit 0\n")
	return buf.String()
}
