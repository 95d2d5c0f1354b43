package devstack

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// When kooflow runs as root, PostgreSQL runs as an unprivileged account (initdb and postgres refuse root). That
// account must be able to reach the cluster's directory, and a checkout under /root (mode 0700) is out of its
// reach. Loosening the permissions of the user's own directories to let it in would expose everything else in
// them, so instead the cluster moves to a directory of its own that the account can reach, keyed by the requested
// directory so each checkout (each state directory) keeps its own cluster across runs.

// UnreachableError says which directory keeps an account from reaching another.
type UnreachableError struct {
	Account string // e.g. "postgres (uid 101)"
	Dir     string // the directory in the way
	Need    string // "search", or the permissions wanted on the target itself, e.g. "rwx"
	Mode    fs.FileMode
	UID     uint32 // owner of Dir
	GID     uint32 // group of Dir
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("%s cannot %s %s (mode %04o, owner uid %d, group gid %d)", e.Account, needVerb(e.Need), e.Dir,
		uint32(e.Mode.Perm()), e.UID, e.GID)
}

func needVerb(need string) string {
	if need == "x" {
		return "search"
	}
	return "get " + need + " on"
}

// dirStat is what the reachability decision needs from stat(2); a function returning it stands in for the file
// system in tests.
type dirStat struct {
	uid, gid uint32
	mode     fs.FileMode
}

type statFunc func(path string) (dirStat, error)

func osStat(path string) (dirStat, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return dirStat{}, err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return dirStat{}, fmt.Errorf("stat %s: no owner information", path)
	}
	return dirStat{uid: st.Uid, gid: st.Gid, mode: fi.Mode()}, nil
}

// Reachable returns nil when a process running with uid and gid (and no supplementary groups, which is how
// StartProc's credential starts PostgreSQL) can search every directory above dir and has the permissions want
// (chmod digits: 4 read, 2 write, 1 search; 0 for none) on dir itself. Otherwise it returns an
// *UnreachableError naming the first directory in the way. Symbolic links in dir are resolved first, since the
// kernel checks the directories of the resolved path. Only mode bits are considered, not ACLs.
func Reachable(dir string, uid, gid, want uint32) error {
	resolved, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return fmt.Errorf("resolve %s: %w", dir, err)
	}
	return reachable(resolved, uid, gid, want, osStat)
}

func reachable(dir string, uid, gid, want uint32, stat statFunc) error {
	if !filepath.IsAbs(dir) {
		return fmt.Errorf("reachability of %s: need an absolute path", dir)
	}
	var chain []string // dir first, "/" last
	for p := filepath.Clean(dir); ; p = filepath.Dir(p) {
		chain = append(chain, p)
		if p == filepath.Dir(p) {
			break
		}
	}
	for i := len(chain) - 1; i >= 0; i-- {
		p, need := chain[i], uint32(1)
		if i == 0 {
			if need = want; need == 0 {
				return nil
			}
		}
		st, err := stat(p)
		if err != nil {
			return fmt.Errorf("stat %s: %w", p, err)
		}
		if !permits(st, uid, gid, need) {
			return &UnreachableError{Account: fmt.Sprintf("uid %d", uid), Dir: p, Need: rwx(need), Mode: st.mode,
				UID: st.uid, GID: st.gid}
		}
	}
	return nil
}

// permits applies the kernel's rule: the owner bits when uid owns the file, else the group bits when gid is its
// group, else the other bits; root is allowed everything on directories.
func permits(st dirStat, uid, gid, need uint32) bool {
	if uid == 0 {
		return true
	}
	bits := uint32(st.mode.Perm())
	switch {
	case st.uid == uid:
		bits >>= 6
	case st.gid == gid:
		bits >>= 3
	}
	return bits&7&need == need
}

func rwx(bits uint32) string {
	if bits == 1 {
		return "x"
	}
	var b strings.Builder
	for i, c := range "rwx" {
		if bits&(4>>i) != 0 {
			b.WriteRune(c)
		}
	}
	return b.String()
}

// relocationBases are the directories, in order of preference, under which a cluster is placed when the account
// that runs PostgreSQL cannot reach the requested directory: /var/lib/kooflow survives reboots; the temporary
// directories are for machines where /var/lib is read-only or $TMPDIR is itself private.
var relocationBases = func() []string {
	bases := []string{"/var/lib/kooflow", filepath.Join(os.TempDir(), "kooflow-postgres"), "/tmp/kooflow-postgres"}
	var out []string
	seen := map[string]bool{}
	for _, b := range bases {
		if !seen[b] {
			seen[b] = true
			out = append(out, b)
		}
	}
	return out
}

// clusterKey names the relocated cluster of one requested directory: a short hash of its absolute path, so the
// same checkout finds the same cluster on every run and different checkouts never share one.
func clusterKey(requested string) string {
	sum := sha256.Sum256([]byte(requested))
	return hex.EncodeToString(sum[:])[:12]
}

// originFile, inside a relocated cluster directory, holds the requested directory it stands for; a cluster whose
// requested directory is gone is removed by the next relocation (see removeOrphans).
const originFile = "origin"

// placement is where a cluster lives.
type placement struct {
	dir string // holds data/, the Unix socket and, briefly, the password file initdb reads
	why string // empty when dir is the requested directory; else why the account cannot use that
}

// placeCluster decides where the cluster for the requested directory (absolute, existing) lives. Without a
// credential (not root) it is the requested directory. As root: an existing cluster is reused where it is;
// otherwise the requested directory when the account can reach it, else a directory of the account's own (mode
// 0700) under the first usable relocation base.
func placeCluster(requested string, cred *syscall.Credential, owner string) (placement, error) {
	here := placement{dir: requested}
	if cred == nil {
		return here, nil
	}
	account := fmt.Sprintf("%s (uid %d)", owner, cred.Uid)
	reach := func(dir string, want uint32) error {
		err := Reachable(dir, cred.Uid, cred.Gid, want)
		var ue *UnreachableError
		if errors.As(err, &ue) {
			ue.Account = account
		}
		return err
	}
	key := clusterKey(requested)
	if fileExists(filepath.Join(requested, "data", "PG_VERSION")) {
		if err := reach(filepath.Join(requested, "data"), 7); err != nil {
			return placement{}, fmt.Errorf("the PostgreSQL cluster in %s was created when %s could reach it, and no longer "+
				"can (%w); make it reachable again, or remove %s to start a new cluster elsewhere", requested, owner, err, requested)
		}
		return here, nil
	}
	for _, base := range relocationBases() {
		dir := filepath.Join(base, key)
		if !fileExists(filepath.Join(dir, "data", "PG_VERSION")) || prepareBase(base, reach) != nil {
			continue
		}
		why, err := relocationReason(requested, reach)
		if err != nil {
			return placement{}, err
		}
		if why == "" {
			why = "an earlier run put the cluster there, when " + owner + " could not reach " + requested
		}
		if err := prepareClusterDir(dir, requested, cred); err != nil {
			return placement{}, err
		}
		return placement{dir: dir, why: why}, nil
	}
	why, err := relocationReason(requested, reach)
	if err != nil {
		return placement{}, err
	}
	if why == "" {
		return here, nil
	}
	var tried []string
	for _, base := range relocationBases() {
		if err := prepareBase(base, reach); err != nil {
			tried = append(tried, err.Error())
			continue
		}
		dir := filepath.Join(base, key)
		removeOrphans(base, dir)
		if err := prepareClusterDir(dir, requested, cred); err != nil {
			return placement{}, err
		}
		return placement{dir: dir, why: why}, nil
	}
	return placement{}, fmt.Errorf("%s, and no directory to put the cluster in instead: %s", why, strings.Join(tried, "; "))
}

// relocationReason is empty when the account can search its way to the requested directory (which initCluster
// then gives to it), else the reason it cannot.
func relocationReason(requested string, reach func(string, uint32) error) (string, error) {
	err := reach(requested, 0)
	var ue *UnreachableError
	if errors.As(err, &ue) {
		return err.Error(), nil
	}
	return "", err
}

// prepareBase makes base usable as a parent of relocated clusters: a directory owned by the current user (root),
// writable by nobody else (so no other account can plant a directory or link there), searchable by the account.
func prepareBase(base string, reach func(string, uint32) error) error {
	if err := reach(filepath.Dir(base), 0); err != nil {
		return fmt.Errorf("%s: %w", base, err)
	}
	if err := os.MkdirAll(base, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", base, err)
	}
	fi, err := os.Lstat(base)
	if err != nil {
		return fmt.Errorf("stat %s: %w", base, err)
	}
	st, _ := fi.Sys().(*syscall.Stat_t)
	switch {
	case !fi.IsDir():
		return fmt.Errorf("%s is not a directory", base)
	case st == nil || int(st.Uid) != os.Geteuid():
		return fmt.Errorf("%s is not owned by uid %d", base, os.Geteuid())
	case fi.Mode().Perm() != 0o755:
		// Ours alone: creating it under a restrictive umask leaves it 0700, which the account cannot search.
		if err := os.Chmod(base, 0o755); err != nil {
			return fmt.Errorf("chmod %s: %w", base, err)
		}
	}
	if err := reach(base, 1); err != nil {
		return fmt.Errorf("%s: %w", base, err)
	}
	return nil
}

// prepareClusterDir creates dir (mode 0700, owned by the account) and records which requested directory it
// serves.
func prepareClusterDir(dir, requested string, cred *syscall.Credential) error {
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("create cluster directory %s: %w", dir, err)
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("stat %s: %w", dir, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("cluster directory %s is not a directory", dir)
	}
	if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
		return fmt.Errorf("give %s to uid %d: %w", dir, cred.Uid, err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("chmod %s: %w", dir, err)
	}
	if err := writeNewFile(filepath.Join(dir, originFile), []byte(requested+"\n"), 0o644); err != nil {
		return fmt.Errorf("record the origin of %s: %w", dir, err)
	}
	// A pointer next to the password, for whoever looks inside the state directory.
	link := filepath.Join(requested, "cluster")
	if cur, err := os.Readlink(link); err != nil || cur != dir {
		_ = os.Remove(link)
		if err := os.Symlink(dir, link); err != nil {
			return fmt.Errorf("link %s to %s: %w", link, dir, err)
		}
	}
	return nil
}

// removeOrphans deletes relocated clusters under base whose requested directory no longer exists (a removed
// checkout, state directory or temporary test directory) and whose server is not running, so relocation does not
// leak a cluster per throwaway directory. Directories without an origin file are not kooflow's and are left alone.
func removeOrphans(base, keep string) {
	entries, err := os.ReadDir(base)
	if err != nil {
		return
	}
	for _, e := range entries {
		dir := filepath.Join(base, e.Name())
		if dir == keep || !e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, originFile))
		if err != nil {
			continue
		}
		origin := strings.TrimSpace(string(b))
		if !filepath.IsAbs(origin) || filepath.Join(base, clusterKey(origin)) != dir {
			continue
		}
		if _, err := os.Lstat(origin); !errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if postmasterRunning(filepath.Join(dir, "data")) {
			continue
		}
		_ = os.RemoveAll(dir)
	}
}

// postmasterRunning reports whether data's postmaster.pid names a live process (or cannot be read for certain).
func postmasterRunning(data string) bool {
	b, err := os.ReadFile(filepath.Join(data, "postmaster.pid"))
	if errors.Is(err, fs.ErrNotExist) {
		return false
	}
	if err != nil {
		return true
	}
	first, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(first))
	if err != nil || pid <= 0 {
		return true
	}
	return syscall.Kill(pid, 0) == nil || errors.Is(syscall.Kill(pid, 0), syscall.EPERM)
}

// writeNewFile replaces path with a new file holding data. It never writes through an existing file or symbolic
// link, which matters when root writes into a directory that belongs to the PostgreSQL account.
func writeNewFile(path string, data []byte, perm fs.FileMode) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, perm)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
