package sshconn

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strconv"
	"strings"

	"github.com/pkg/sftp"

	"github.com/cauldron-go/cauldron/shell"
	"github.com/cauldron-go/cauldron/transport"
)

// Put writes f atomically through SFTP: a temporary file beside the target, its mode
// set before any content is written, then its owners; then a rename over the target.
// A validator, a modification time or Become add one shell command on the host, which
// runs the same finishing steps as every shell-based transport (transport.FinishPut).
// With Become, the content is uploaded to a private directory of the login user and
// installed as root by one sudo command (transport.PutStaged).
func (c *Conn) Put(ctx context.Context, f transport.File) error {
	defer c.traffic.Begin()()
	if f.Path == "" {
		return fmt.Errorf("ssh %s: put: no path given", c.name)
	}
	var err error
	if c.becomes() {
		err = c.putAsRoot(ctx, f)
	} else {
		err = c.putBySFTP(ctx, f)
	}
	var rejected *transport.RejectedError
	if errors.As(err, &rejected) {
		return err
	}
	if err != nil {
		return fmt.Errorf("ssh %s: put %s: %w", c.name, f.Path, err)
	}
	return nil
}

// Read returns the content of p; an error wrapping fs.ErrNotExist when it is absent.
func (c *Conn) Read(ctx context.Context, p string) ([]byte, error) {
	defer c.traffic.Begin()()
	if c.becomes() {
		b, err := transport.ReadByShell(ctx, c, p)
		if err != nil {
			return nil, fmt.Errorf("ssh %s: %w", c.name, err)
		}
		return b, nil
	}
	sc, err := c.sftpClient()
	if err != nil {
		return nil, fmt.Errorf("ssh %s: read %s: %w", c.name, p, err)
	}
	fh, err := sc.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("ssh %s: read %s: %w", c.name, p, fs.ErrNotExist)
	}
	if err != nil {
		return nil, fmt.Errorf("ssh %s: read %s: %w", c.name, p, err)
	}
	defer fh.Close()
	b, err := io.ReadAll(ctxReader{ctx, fh})
	if err != nil {
		return nil, fmt.Errorf("ssh %s: read %s: %w", c.name, p, err)
	}
	return b, nil
}

func (c *Conn) putBySFTP(ctx context.Context, f transport.File) (err error) {
	mode := f.Mode.Perm()
	if mode == 0 {
		mode = 0o644
	}
	// The shell finishes the file when it has to run a validator or set a time to the
	// nanosecond (SFTP v3 knows seconds only); it then sets the owners too.
	byShell := f.Check != "" || f.CheckFunc != nil || !f.ModTime.IsZero()
	uid, gid := -1, -1
	if !byShell && (f.Owner != "" || f.Group != "") {
		if uid, gid, err = c.resolveIDs(ctx, f.Owner, f.Group); err != nil {
			return err
		}
	}
	sc, err := c.sftpClient()
	if err != nil {
		return err
	}
	tmp := transport.TempName(f.Path)
	if err := c.uploadNew(ctx, sc, tmp, mode, f); err != nil {
		return err
	}
	if byShell {
		// FinishPut removes the temporary file itself on a rejection or a failure.
		return transport.FinishPut(ctx, c, f, tmp)
	}
	if uid >= 0 || gid >= 0 {
		err = c.chown(sc, tmp, uid, gid)
	}
	if err == nil {
		err = ctx.Err()
	}
	if err == nil {
		if _, ok := sc.HasExtension("posix-rename@openssh.com"); ok {
			err = sc.PosixRename(tmp, f.Path)
		} else {
			err = sc.Rename(tmp, f.Path)
		}
		if err != nil {
			err = fmt.Errorf("rename %s over it: %w", tmp, err)
		}
	}
	if err != nil {
		sc.Remove(tmp) // best effort: over a cut connection the temp file stays
	}
	return err
}

// chown gives the file at p the owner uid and group gid; -1 keeps the one it has.
func (c *Conn) chown(sc *sftp.Client, p string, uid, gid int) error {
	if uid < 0 || gid < 0 {
		st, err := sc.Stat(p)
		if err != nil {
			return fmt.Errorf("stat %s: %w", p, err)
		}
		fst, ok := st.Sys().(*sftp.FileStat)
		if !ok {
			return fmt.Errorf("stat %s: the server gave no owner", p)
		}
		if uid < 0 {
			uid = int(fst.UID)
		}
		if gid < 0 {
			gid = int(fst.GID)
		}
	}
	if err := sc.Chown(p, uid, gid); err != nil {
		return fmt.Errorf("chown %s to %d:%d: %w", p, uid, gid, err)
	}
	return nil
}

func (c *Conn) putAsRoot(ctx context.Context, f transport.File) error {
	// Probe sudo before uploading, so that a refusal leaves nothing behind.
	if _, err := c.sudoMode(ctx); err != nil {
		return err
	}
	dir, err := c.privateUploadDir(ctx)
	if err != nil {
		return err
	}
	sc, err := c.sftpClient()
	if err != nil {
		return err
	}
	up := dir + "/put-" + randomHex()
	if err := c.uploadNew(ctx, sc, up, 0o600, f); err != nil {
		return err
	}
	if err := transport.PutStaged(ctx, c, f, up); err != nil {
		sc.Remove(up) // still there when sudo itself failed
		return err
	}
	return nil
}

// uploadNew creates p, which must not exist, with mode (set before any byte of a
// possibly secret content is written), writes f's content and closes it. On a failure
// it removes p, best effort: over a cut connection the file stays.
func (c *Conn) uploadNew(ctx context.Context, sc *sftp.Client, p string, mode fs.FileMode, f transport.File) error {
	fh, err := sc.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL)
	if err != nil {
		return fmt.Errorf("create %s: %w", p, err)
	}
	err = fh.Chmod(mode)
	if err == nil {
		err = c.upload(ctx, fh, p, f)
	}
	if cerr := fh.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		sc.Remove(p)
		return fmt.Errorf("write %s: %w", p, err)
	}
	return nil
}

// upload writes f's content to fh (at p), giving up when ctx is done.
func (c *Conn) upload(ctx context.Context, fh *sftp.File, p string, f transport.File) error {
	content, size := f.Reader()
	var r io.Reader = ctxReader{ctx, content}
	if c.uploadWrap != nil {
		r = c.uploadWrap(p, r, int(size))
	}
	_, err := fh.ReadFromWithConcurrency(r, 0)
	return err
}

func (c *Conn) sftpClient() (*sftp.Client, error) {
	client, gen, err := c.sshClient(context.Background())
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sftp != nil && c.sftpGen == gen {
		return c.sftp, nil
	}
	if c.sftp != nil {
		c.sftp.Close() // started on a lost warm connection
		c.sftp = nil
	}
	if c.closed {
		return nil, errors.New("connection closed")
	}
	c.sftpGen = gen
	// The protocol promises 32 KiB writes; OpenSSH's server (the one that announces
	// limits@openssh.com, 8.6 and later) takes 255 KiB, which made a 68 MB upload
	// faster than the same bytes on a command's stdin (BenchmarkUploadOfALargeFile).
	// The client is started for the big writes, as nearly every server is such an
	// OpenSSH, and started again with the small ones when the server's hello does not
	// announce the extension: no packet is sent before that check but the hello. Not
	// the other way round: a second SFTP session is a round trip and a server process
	// more on every host, and a first run of 100 hosts paid for 100 of them.
	sc, err := sftp.NewClient(client, sftp.UseConcurrentWrites(true), sftp.MaxPacketUnchecked(openSSHMaxWrite))
	if err != nil {
		return nil, fmt.Errorf("start sftp: %w", err)
	}
	if _, ok := sc.HasExtension("limits@openssh.com"); !ok {
		sc.Close()
		if sc, err = sftp.NewClient(client, sftp.UseConcurrentWrites(true)); err != nil {
			return nil, fmt.Errorf("start sftp: %w", err)
		}
	}
	c.sftp = sc
	return sc, nil
}

// openSSHMaxWrite is the largest write OpenSSH's sftp-server takes: its limits@openssh.com
// answer (SFTP_MAX_MSG_LENGTH, 256 KiB, less room for the request's header).
const openSSHMaxWrite = 255 * 1024

// privateUploadDir is a directory only the login user can enter, made once per Conn
// and removed by Close.
func (c *Conn) privateUploadDir(ctx context.Context) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.uploadDir != "" {
		return c.uploadDir, nil
	}
	var out bytes.Buffer
	line := shell.Join("mktemp", "-d")
	if err := c.run(ctx, line, line, nil, nil, &out, nil); err != nil {
		return "", fmt.Errorf("make upload directory: %w", err)
	}
	dir := strings.TrimSpace(out.String())
	if !path.IsAbs(dir) {
		return "", fmt.Errorf("make upload directory: mktemp -d printed %q", dir)
	}
	c.uploadDir = dir
	return dir, nil
}

// resolveIDs turns owner and group names into ids with one command, remembering them
// for the life of the Conn. An empty name gives -1.
func (c *Conn) resolveIDs(ctx context.Context, owner, group string) (uid, gid int, err error) {
	uid, gid = -1, -1
	var script []string
	c.mu.Lock()
	if owner != "" {
		if n, ok := c.cachedID("u", owner); ok {
			uid = n
		} else {
			script = append(script, `echo "u=$(id -u `+shell.Quote(owner)+` 2>/dev/null)"`)
		}
	}
	if group != "" {
		if n, ok := c.cachedID("g", group); ok {
			gid = n
		} else {
			script = append(script, `echo "g=$(getent group `+shell.Quote(group)+` | cut -d: -f3)"`)
		}
	}
	c.mu.Unlock()
	if len(script) == 0 {
		return uid, gid, nil
	}

	var out bytes.Buffer
	line := strings.Join(script, "; ")
	if err := c.run(ctx, line, shell.Join("sh", "-c", line), nil, nil, &out, nil); err != nil {
		return -1, -1, fmt.Errorf("look up owner: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, l := range strings.Split(out.String(), "\n") {
		kind, value, ok := strings.Cut(strings.TrimSpace(l), "=")
		if !ok {
			continue
		}
		name := owner
		if kind == "g" {
			name = group
		}
		n, err := strconv.Atoi(value)
		if err != nil || n < 0 {
			what := map[string]string{"u": "user", "g": "group"}[kind]
			return -1, -1, fmt.Errorf("no %s %q on the host", what, name)
		}
		c.ids[kind+":"+name] = n
		if kind == "u" {
			uid = n
		} else {
			gid = n
		}
	}
	if (owner != "" && uid < 0) || (group != "" && gid < 0) {
		return -1, -1, fmt.Errorf("look up owner %q group %q: unexpected output %q", owner, group, out.String())
	}
	return uid, gid, nil
}

// cachedID returns a numeric name as is, or a looked-up id. c.mu is held.
func (c *Conn) cachedID(kind, name string) (int, bool) {
	if n, err := strconv.Atoi(name); err == nil && n >= 0 {
		return n, true
	}
	n, ok := c.ids[kind+":"+name]
	return n, ok
}

func randomHex() string {
	b := make([]byte, 6)
	rand.Read(b) // never fails (crypto/rand)
	return hex.EncodeToString(b)
}

// ctxReader stops reading once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (r ctxReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}
