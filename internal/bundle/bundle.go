package bundle

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
)

// Errors returned by Open.
var (
	// ErrIncomplete: the capture that wrote the directory did not finish:
	// it has no meta.json (or it is not a bundle), or only a provisional
	// one (then the error is ErrUnfinished too).
	ErrIncomplete = errors.New("not a finished lockscope bundle")
	// ErrUnfinished: meta.json is the provisional one a capture writes
	// when it starts: the capture was killed (or still runs).
	// OpenUnfinished reopens such a bundle to recover it.
	ErrUnfinished = errors.New("its capture did not finish (killed?): lockscope merge recovers what it collected")
	// ErrNewerVersion: the bundle was written by a newer lockscope.
	ErrNewerVersion = errors.New("bundle format is newer than this lockscope understands")
)

// Writer creates the files of a new bundle. It is not safe for concurrent
// use by several goroutines except through the files it hands out, each of
// which belongs to one writer.
type Writer struct {
	dir string
}

// Create makes dir (and its parents) for a new bundle. An existing dir must
// be empty: a bundle never overwrites another.
func Create(dir string) (*Writer, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating bundle directory: %w", hint(err))
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("reading bundle directory: %w", err)
	}
	if len(entries) > 0 {
		return nil, fmt.Errorf("bundle directory %s is not empty: choose a new one", dir)
	}
	return &Writer{dir: dir}, nil
}

// Dir is the bundle's directory.
func (w *Writer) Dir() string { return w.dir }

// Path returns the path of a file of the bundle.
func (w *Writer) Path(name string) string { return filepath.Join(w.dir, name) }

// Create creates a file of the bundle for writing. Errors writing to it
// should go through Hint so that a full disk says what to do.
func (w *Writer) Create(name string) (*os.File, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(w.Path(name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, fmt.Errorf("creating %s: %w", name, hint(err))
	}
	return f, nil
}

// WriteProvisional writes meta as a provisional meta.json, atomically: what
// a capture knows so far, so that a capture killed before Finish leaves a
// bundle that says what it was and can be recovered (OpenUnfinished). It
// lists no files; meta is left marked Provisional.
func (w *Writer) WriteProvisional(meta *Meta) error {
	meta.Format, meta.Version, meta.Provisional = Format, Version, true
	return w.writeMeta(meta)
}

// Finish lists and hashes the bundle's files into meta, sets its format
// and version, and writes meta.json atomically (a temporary file renamed
// into place, replacing a provisional one), making the bundle complete.
func (w *Writer) Finish(meta *Meta) error {
	meta.Format, meta.Version, meta.Provisional = Format, Version, false
	files, err := listFiles(w.dir)
	if err != nil {
		return err
	}
	meta.Files = files
	return w.writeMeta(meta)
}

func (w *Writer) writeMeta(meta *Meta) error {
	b, err := json.MarshalIndent(meta, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding meta.json: %w", err)
	}
	return writeAtomic(w.Path(MetaFile), append(b, '\n'))
}

func listFiles(dir string) ([]File, error) {
	var files []File
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || d.Name() == MetaFile || strings.HasPrefix(d.Name(), ".") {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		f, err := hashFile(p)
		if err != nil {
			return err
		}
		f.Name = filepath.ToSlash(rel)
		files = append(files, f)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing bundle files: %w", err)
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Name < files[j].Name })
	return files, nil
}

func hashFile(p string) (File, error) {
	f, err := os.Open(p)
	if err != nil {
		return File{}, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return File{}, err
	}
	return File{Bytes: n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

func writeAtomic(path string, b []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".meta-*.json")
	if err != nil {
		return fmt.Errorf("writing meta.json: %w", hint(err))
	}
	_, werr := tmp.Write(b)
	if werr == nil {
		werr = tmp.Sync()
	}
	if cerr := tmp.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("writing meta.json: %w", hint(werr))
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("writing meta.json: %w", err)
	}
	return nil
}

// Bundle is a finished bundle opened for reading.
type Bundle struct {
	Dir  string
	Meta Meta
}

// Open reads a finished bundle's meta.json. A bundle whose capture did not
// finish is an error wrapping ErrIncomplete (and ErrUnfinished when it has
// a provisional meta.json).
func Open(dir string) (*Bundle, error) {
	m, err := readMeta(dir)
	if err != nil {
		return nil, err
	}
	if m.Provisional {
		return nil, fmt.Errorf("opening bundle %s: %w: %w", dir, ErrIncomplete, ErrUnfinished)
	}
	return &Bundle{Dir: dir, Meta: *m}, nil
}

// OpenUnfinished reopens a bundle whose capture did not finish: it returns
// the provisional meta.json and a Writer whose Finish completes the bundle.
// A finished bundle is an error.
func OpenUnfinished(dir string) (*Writer, *Meta, error) {
	m, err := readMeta(dir)
	if err != nil {
		return nil, nil, err
	}
	if !m.Provisional {
		return nil, nil, fmt.Errorf("reopening bundle %s: its capture finished, there is nothing to recover", dir)
	}
	return &Writer{dir: dir}, m, nil
}

func readMeta(dir string) (*Meta, error) {
	b, err := os.ReadFile(filepath.Join(dir, MetaFile))
	if errors.Is(err, fs.ErrNotExist) {
		if _, serr := os.Stat(dir); serr != nil {
			return nil, fmt.Errorf("opening bundle: %w", serr)
		}
		return nil, fmt.Errorf("opening bundle %s: %w (no meta.json)", dir, ErrIncomplete)
	}
	if err != nil {
		return nil, fmt.Errorf("opening bundle: %w", err)
	}
	var m Meta
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("opening bundle %s: meta.json: %w", dir, err)
	}
	if m.Format != Format {
		return nil, fmt.Errorf("opening bundle %s: meta.json format %q, want %q", dir, m.Format, Format)
	}
	if m.Version > Version {
		return nil, fmt.Errorf("opening bundle %s: version %d (this lockscope reads up to %d; upgrade it): %w",
			dir, m.Version, Version, ErrNewerVersion)
	}
	return &m, nil
}

// Path returns the path of a file of the bundle.
func (b *Bundle) Path(name string) string { return filepath.Join(b.Dir, name) }

// Has reports whether the bundle has a file: an input listed in meta.json
// or an output that merge wrote since.
func (b *Bundle) Has(name string) bool {
	if checkName(name) != nil {
		return false
	}
	st, err := os.Stat(b.Path(name))
	return err == nil && st.Mode().IsRegular()
}

// Verify re-hashes every listed file and reports the first that is missing
// or changed.
func (b *Bundle) Verify() error {
	for _, want := range b.Meta.Files {
		got, err := hashFile(b.Path(want.Name))
		if err != nil {
			return fmt.Errorf("verifying bundle: %w", err)
		}
		if got.SHA256 != want.SHA256 || got.Bytes != want.Bytes {
			return fmt.Errorf("verifying bundle: %s changed since it was written (%d bytes, was %d)", want.Name, got.Bytes, want.Bytes)
		}
	}
	return nil
}

func checkName(name string) error {
	if name == "" || name == MetaFile || filepath.IsAbs(name) || strings.Contains(filepath.ToSlash(name), "..") {
		return fmt.Errorf("invalid bundle file name %q", name)
	}
	return nil
}

// Hint adds what to do to errors a user can act on: a full disk or a quota.
// It keeps the error's chain for errors.Is.
func Hint(err error) error { return hint(err) }

func hint(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, syscall.ENOSPC):
		return fmt.Errorf("%w (the disk is full: free space or write the bundle elsewhere with -o)", err)
	case errors.Is(err, syscall.EDQUOT):
		return fmt.Errorf("%w (disk quota exceeded: free space or write the bundle elsewhere with -o)", err)
	case errors.Is(err, syscall.EROFS):
		return fmt.Errorf("%w (read-only filesystem: write the bundle elsewhere with -o)", err)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("%w (no permission: write the bundle elsewhere with -o, or run as a user who may)", err)
	}
	return err
}
