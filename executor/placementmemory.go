package executor

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// memoryNotes keep the memory each Engine of a list reported, for the
// prepare hooks of this runner host that come after: /info is an Engine's
// slow answer (~40 ms, and one dockerd answers its callers one at a time),
// and a machine's memory does not change between jobs. The file sits
// beside the placement lock; only a file this user wrote, no one else can
// write, and younger than memoryNotesAge is believed, so a local user
// cannot steer placement by planting one. Nothing in it is secret.
type memoryNotes struct {
	path string
}

// memoryNotesAge bounds how old a note may be: an Engine address can come
// to name another machine.
const memoryNotesAge = 10 * time.Minute

// memoryNotesMax bounds what is read of the file.
const memoryNotesMax = 64 << 10

func memoryNotesFor(dir string, engines []string) memoryNotes {
	h := fnv.New64a()
	h.Write([]byte(strings.Join(engines, "\x00")))
	return memoryNotes{path: filepath.Join(dir, fmt.Sprintf("dind-executor-placement-%x.memory", h.Sum64()))}
}

// read returns the notes when they can be believed, else none.
func (n memoryNotes) read(now time.Time) map[string]int64 {
	f, err := os.OpenFile(n.path, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return nil
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm()&0o022 != 0 || now.Sub(fi.ModTime()) > memoryNotesAge {
		return nil
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); !ok || int(st.Uid) != os.Geteuid() {
		return nil
	}
	data, err := io.ReadAll(io.LimitReader(f, memoryNotesMax))
	if err != nil {
		return nil
	}
	var mems map[string]int64
	if json.Unmarshal(data, &mems) != nil {
		return nil
	}
	return mems
}

// write replaces the notes with mems (Engines that did not answer are
// left out). It is best effort: placement works without notes.
func (n memoryNotes) write(mems map[string]int64) error {
	data, err := json.Marshal(mems)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(n.path), filepath.Base(n.path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // gone after the rename; left only on failure
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), n.path)
}
