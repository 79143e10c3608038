package runner

import (
	"bytes"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"
)

// defaultTokenPrefixes are the GitLab token prefixes the runner masks by
// default (FF_MASK_ALL_DEFAULT_TOKENS).
var defaultTokenPrefixes = []string{
	"glpat-", "gloas-", "gldt-", "glrt-", "glrtr-", "glcbt-", "glptt-",
	"glft-", "glimt-", "glagent-", "glsoat-", "glffct-",
}

const maskedText = "[MASKED]"

// masker hides masked variable values and token suffixes in the job log.
type masker struct {
	values   []string
	prefixes *regexp.Regexp
}

func newMasker(values, prefixes []string) *masker {
	m := &masker{}
	for _, v := range values {
		if v != "" {
			m.values = append(m.values, v)
		}
	}
	// Longest first, so a value containing another is masked whole.
	sort.Slice(m.values, func(i, j int) bool { return len(m.values[i]) > len(m.values[j]) })
	var alts []string
	for _, p := range prefixes {
		alts = append(alts, regexp.QuoteMeta(p))
	}
	if len(alts) > 0 {
		m.prefixes = regexp.MustCompile(`(` + strings.Join(alts, "|") + `)[0-9A-Za-z_\-]+`)
	}
	return m
}

func (m *masker) mask(s string) string {
	for _, v := range m.values {
		s = strings.ReplaceAll(s, v, maskedText)
	}
	if m.prefixes != nil {
		s = m.prefixes.ReplaceAllString(s, "${1}"+maskedText)
	}
	return s
}

// jobLog is the job trace: everything is kept in memory and mirrored to
// the caller's writer as it arrives.
type jobLog struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	out    io.Writer
	masker *masker
	now    func() time.Time
}

func newJobLog(out io.Writer) *jobLog {
	return &jobLog{out: out, masker: newMasker(nil, nil), now: time.Now}
}

func (l *jobLog) writeRaw(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s = l.masker.mask(s)
	l.buf.WriteString(s)
	if l.out != nil {
		_, _ = io.WriteString(l.out, s)
	}
}

func (l *jobLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *jobLog) setMasker(m *masker) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.masker = m
}

func (l *jobLog) Println(s string)   { l.writeRaw(s + "\n") }
func (l *jobLog) Noticeln(s string)  { l.writeRaw(ansiBoldGreen + s + ansiReset + "\n") }
func (l *jobLog) Warningln(s string) { l.writeRaw(ansiYellow + "WARNING: " + s + ansiReset + "\n") }
func (l *jobLog) Errorln(s string)   { l.writeRaw(ansiBoldRed + "ERROR: " + s + ansiReset + "\n") }

// section writes the runner's collapsible-section markers around f, with
// the bold cyan header line first.
func (l *jobLog) section(name, header string, f func()) {
	l.writeRaw(fmt.Sprintf("section_start:%d:%s\r"+ansiClear, l.now().Unix(), name))
	l.Println(ansiBoldCyan + header + ansiReset)
	defer l.writeRaw(fmt.Sprintf("section_end:%d:%s\r"+ansiClear, l.now().Unix(), name))
	f()
}

// stream returns a writer for one output stream of an exec. Whole lines are
// masked and appended; Close flushes a trailing partial line.
func (l *jobLog) stream() *lineWriter { return &lineWriter{log: l} }

type lineWriter struct {
	log     *jobLog
	pending []byte
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.pending = append(w.pending, p...)
	if i := bytes.LastIndexByte(w.pending, '\n'); i >= 0 {
		w.log.writeRaw(string(w.pending[:i+1]))
		w.pending = append(w.pending[:0], w.pending[i+1:]...)
	}
	return len(p), nil
}

func (w *lineWriter) Close() error {
	if len(w.pending) > 0 {
		w.log.writeRaw(string(w.pending))
		w.pending = nil
	}
	return nil
}

// lockedBuffer collects output written from several goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	out io.Writer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Write(p)
	if b.out != nil {
		_, _ = b.out.Write(p)
	}
	return len(p), nil
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

var ansiSeq = regexp.MustCompile("\x1b\\[[0-9;]*[A-Za-z]|section_(start|end):[0-9]+:[A-Za-z0-9_.\\-\\[\\],=]+\r")

// PlainText removes ANSI colour sequences and section markers from a job
// log, leaving the text a reader of the job page sees.
func PlainText(log string) string { return ansiSeq.ReplaceAllString(log, "") }
