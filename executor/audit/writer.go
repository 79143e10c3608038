package audit

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// MaxRecordBytes bounds one line. Far below what a single write(2) to a
// local file does at once, and far above a real record (lists in Produced
// are capped before they get here).
const MaxRecordBytes = 1 << 20

// File permissions: the trail is for operators, not for every local user.
const (
	fileMode = 0o640
	dirMode  = 0o750
)

// Writer appends records to the trail at Path. It keeps no file open
// between records, so each hook process simply appends and exits.
type Writer struct {
	Path string
}

// NewWriter returns a writer for the trail at path.
func NewWriter(path string) *Writer { return &Writer{Path: path} }

// Append writes r as one line. The line is written while holding an
// exclusive flock, with O_APPEND, in one write call (continued only if the
// kernel wrote less), then synced: concurrent writers, even in other
// processes, never interleave, and a record is on disk when Append returns.
func (w *Writer) Append(r Record) error {
	line, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode audit record %s: %w", r.Event, err)
	}
	if len(line)+1 > MaxRecordBytes {
		return fmt.Errorf("audit record %s for sandbox %s is %d bytes, more than the %d a line may have", r.Event, r.Sandbox, len(line)+1, MaxRecordBytes)
	}
	line = append(line, '\n')

	if err := os.MkdirAll(filepath.Dir(w.Path), dirMode); err != nil {
		return fmt.Errorf("create audit trail directory: %w (check [audit] path)", err)
	}
	f, err := os.OpenFile(w.Path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, fileMode)
	if err != nil {
		return fmt.Errorf("open audit trail: %w (check [audit] path)", err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("lock audit trail %s: %w", w.Path, err)
	}
	// Closing the file releases the lock.
	for len(line) > 0 {
		n, err := f.Write(line)
		if err != nil {
			return fmt.Errorf("append to audit trail %s: %w", w.Path, err)
		}
		line = line[n:]
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync audit trail %s: %w", w.Path, err)
	}
	return nil
}
