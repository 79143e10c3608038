// Package tarball packs directories of this machine into tar streams, for
// build contexts and image layers made by the tests and the bench.
package tarball

import (
	"archive/tar"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// Dir writes dir as a tar stream to w (see Add).
func Dir(w io.Writer, dir, prefix string, skip func(string) bool) error {
	tw := tar.NewWriter(w)
	if err := Add(tw, dir, prefix, skip); err != nil {
		return err
	}
	return tw.Close()
}

// Add adds dir's regular files, directories and symlinks under prefix,
// leaving out the paths (slash-separated, relative to dir) skip selects.
func Add(tw *tar.Writer, dir, prefix string, skip func(string) bool) error {
	return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil || rel == "." {
			return err
		}
		if skip != nil && skip(filepath.ToSlash(rel)) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		link := ""
		if info.Mode()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(path); err != nil {
				return err
			}
		}
		hdr, err := tar.FileInfoHeader(info, link)
		if err != nil {
			return err
		}
		hdr.Name = filepath.ToSlash(filepath.Join(prefix, rel))
		if d.IsDir() {
			hdr.Name += "/"
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if info.Mode().IsRegular() {
			f, err := os.Open(path)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = io.Copy(tw, f)
			return err
		}
		return nil
	})
}
