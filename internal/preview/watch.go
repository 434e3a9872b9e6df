package preview

import (
	"context"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/fsnotify/fsnotify"
)

// watcher tells the server when a file that the issue is made of changes.
// Editors' programs save by writing a temporary file and renaming it over
// the old one, which ends a watch on the file itself: so folders are
// watched, and events filtered by path.
type watcher struct {
	fs   *fsnotify.Watcher
	kick func()
	log  *slog.Logger

	mu    sync.Mutex
	trees []string        // folders whose whole content matters (notes, templates)
	files map[string]bool // single files that matter (config, intro)
	dirs  map[string]bool // folders added to fs
}

func newWatcher(kick func(), log *slog.Logger) (*watcher, error) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	return &watcher{fs: w, kick: kick, log: log, files: map[string]bool{}, dirs: map[string]bool{}}, nil
}

// set replaces what is watched: each path is a folder (watched with its
// subfolders) or a file (its folder is watched). A path that does not
// exist yet is watched through its nearest existing parent, so that its
// creation triggers a rebuild (which then watches it).
func (w *watcher) set(paths []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.trees, w.files = nil, map[string]bool{}
	want := map[string]bool{}
	for _, p := range paths {
		p, err := filepath.Abs(p)
		if err != nil {
			continue
		}
		if fi, err := os.Stat(p); err == nil && fi.IsDir() {
			w.trees = append(w.trees, p)
			for _, d := range subdirs(p) {
				want[d] = true
			}
			continue
		}
		w.files[p] = true
		dir := filepath.Dir(p)
		for !isDir(dir) && filepath.Dir(dir) != dir {
			dir = filepath.Dir(dir)
		}
		want[dir] = true
	}
	for d := range w.dirs {
		if !want[d] {
			_ = w.fs.Remove(d)
			delete(w.dirs, d)
		}
	}
	for d := range want {
		w.add(d)
	}
}

// add watches one folder; w.mu is held.
func (w *watcher) add(dir string) {
	if w.dirs[dir] {
		return
	}
	if err := w.fs.Add(dir); err != nil {
		w.log.Warn("preview: cannot watch folder", "dir", dir, "err", err)
		return
	}
	w.dirs[dir] = true
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// subdirs returns root and every folder below it, hidden ones excepted.
func subdirs(root string) []string {
	var out []string
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil
		}
		if p != root && strings.HasPrefix(d.Name(), ".") {
			return filepath.SkipDir
		}
		out = append(out, p)
		return nil
	})
	return out
}

// run forwards relevant events until ctx is done.
func (w *watcher) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case err, ok := <-w.fs.Errors:
			if !ok {
				return
			}
			w.log.Warn("preview: watching files", "err", err)
		case ev, ok := <-w.fs.Events:
			if !ok {
				return
			}
			if w.relevant(ev) {
				w.log.Debug("preview: change", "path", ev.Name, "op", ev.Op.String())
				w.kick()
			}
		}
	}
}

// relevant reports whether an event concerns a watched path, and watches a
// folder created inside a watched tree.
func (w *watcher) relevant(ev fsnotify.Event) bool {
	if ev.Op == fsnotify.Chmod || ignored(filepath.Base(ev.Name)) {
		return false
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.files[ev.Name] {
		return true
	}
	for _, t := range w.trees {
		if ev.Name == t || strings.HasPrefix(ev.Name, t+string(filepath.Separator)) {
			if ev.Has(fsnotify.Create) && isDir(ev.Name) {
				for _, d := range subdirs(ev.Name) {
					w.add(d)
				}
			}
			return true
		}
	}
	// A folder on the way to a watched path appeared or went away.
	for p := range w.files {
		if strings.HasPrefix(p, ev.Name+string(filepath.Separator)) {
			return true
		}
	}
	for _, t := range w.trees {
		if strings.HasPrefix(t, ev.Name+string(filepath.Separator)) {
			return true
		}
	}
	return false
}

// ignored tells editors' swap, backup and lock files, which change while an
// editor types and are not content.
func ignored(name string) bool {
	switch {
	case strings.HasPrefix(name, "."), strings.HasPrefix(name, "#"), strings.HasSuffix(name, "~"),
		strings.HasSuffix(name, ".swp"), strings.HasSuffix(name, ".swx"), strings.HasSuffix(name, ".swo"),
		name == "4913": // vim's probe for a writable folder
		return true
	}
	return false
}

func (w *watcher) close() error { return w.fs.Close() }
