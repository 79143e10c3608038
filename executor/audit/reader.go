package audit

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
)

// Result is what a read of the trail found.
type Result struct {
	Records []Record
	// Skipped counts lines that are not records: torn by a crash mid-write,
	// longer than MaxRecordBytes, or not JSON. They are reported, not fatal,
	// so one bad line never hides the rest of the trail.
	Skipped int
}

// ReadFile reads the trail at path and keeps the records q selects. A
// trail that does not exist yet holds no records. It stops when ctx ends.
func ReadFile(ctx context.Context, path string, q Query) (Result, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return Result{}, nil
	}
	if err != nil {
		return Result{}, fmt.Errorf("open audit trail: %w (check [audit] path)", err)
	}
	defer f.Close()
	res, err := Read(ctx, f, q)
	if err != nil {
		return res, fmt.Errorf("read audit trail %s: %w", path, err)
	}
	return res, nil
}

// Read scans a trail line by line, in constant memory per line (a line is
// never held beyond MaxRecordBytes), and keeps the records q selects. It
// stops when ctx ends.
func Read(ctx context.Context, r io.Reader, q Query) (Result, error) {
	var res Result
	br := bufio.NewReaderSize(r, 64<<10)
	var line []byte
	tooLong := false
	for {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		chunk, err := br.ReadSlice('\n')
		if !tooLong {
			line = append(line, chunk...)
			if len(line) > MaxRecordBytes {
				tooLong, line = true, line[:0]
			}
		}
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			// A last line without its newline was torn mid-write.
			if tooLong || len(bytes.TrimSpace(line)) > 0 {
				res.Skipped++
			}
			return res, nil
		case err != nil:
			return res, err
		}
		if tooLong {
			res.Skipped++
		} else if len(bytes.TrimSpace(line)) > 0 {
			var rec Record
			if json.Unmarshal(line, &rec) != nil || rec.Event == "" {
				res.Skipped++
			} else if q.Match(rec) {
				res.Records = append(res.Records, rec)
			}
		}
		line, tooLong = line[:0], false
	}
}
