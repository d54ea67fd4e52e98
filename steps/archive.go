package steps

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sync/errgroup"

	"github.com/cauldron-go/cauldron/shell"
	"github.com/cauldron-go/cauldron/transport"
)

// Untar unpacks a tar archive already on the host (compression is detected by tar) into
// Dest. Its guard is Creates: when that path exists the step is converged (Creates
// defaults to Dest). The archive is unpacked into a temporary directory beside Dest and
// renamed into place, so a half-done extract never looks done: Dest itself when it does
// not exist yet, otherwise each top-level entry into Dest. Dest's parent must exist
// (make it with Dir). StripComponents drops that many leading folders of each entry, as
// tar --strip-components does: 1 unpacks jdk-17.0.2/bin/java as Dest/bin/java.
//
//	steps.Untar{Archive: "/home/gaia3d/setup/jdk-17.0.2.tar.gz", Dest: "/home/gaia3d/tools/jdk-17.0.2",
//		StripComponents: 1, Creates: "/home/gaia3d/tools/jdk-17.0.2/bin/java", Owner: "gaia3d", Group: "gaia3d"}
//
// With Upload set, the archive comes from the control machine first, as that Upload
// step alone would bring it (Archive is then Upload.Dest, and may be left empty). On a
// host that needs both the archive and the unpacked tree, the archive crosses once and
// tar unpacks it as it arrives, while the same bytes are written to Upload.Dest: the
// transfer and the unpacking overlap instead of following each other. A host that has
// the tree but not the archive gets the archive only (Creates says the tree is done);
// one that has the archive but not the tree unpacks the archive it has.
//
//	steps.Untar{Upload: &steps.Upload{Src: "jdk-17.0.2.tar.gz", Dest: "/home/gaia3d/setup/jdk-17.0.2.tar.gz",
//		Owner: "gaia3d", Group: "gaia3d", Mode: 0o640}, Dest: "/home/gaia3d/tools/jdk-17.0.2", StripComponents: 1,
//		Creates: "/home/gaia3d/tools/jdk-17.0.2/bin/java", Owner: "gaia3d", Group: "gaia3d"}
type Untar struct {
	Archive         string
	Dest            string
	Creates         string
	Owner           string
	Group           string
	StripComponents int
	// Upload, when set, brings the archive from the control machine (see above).
	Upload *Upload
	// SendPlain, with Upload and a gzipped archive, has the host unpack the archive's
	// plain tar, decompressed once on the control machine and kept in CacheDir, instead
	// of gunzipping the archive itself: the host only writes files. The archive still
	// crosses too, at the same time, for Upload.Dest; so the link carries the archive and
	// its plain tar (for the lab's JDK, 141 + 272 MB instead of 141 MB), and each host
	// saves gunzip's CPU (about 3 s for that JDK on this project's machine). Worth it
	// where the hosts' CPU is scarcer than the link's bandwidth: hosts on the control
	// machine (containers), a fast LAN; not over a slow or metered link. An archive
	// that is not gzipped is sent as it is.
	SendPlain bool
	// CacheDir holds the plain tars on the control machine (see PlainTar); empty means
	// DefaultPlainTarCache.
	CacheDir string
}

func (u Untar) String() string { return "untar " + u.archive() + " into " + u.Dest }

// archive is the archive's path on the host.
func (u Untar) archive() string {
	if u.Archive == "" && u.Upload != nil {
		return u.Upload.Dest
	}
	return u.Archive
}

// Validate rejects relative paths, bad owners, a negative StripComponents, and an
// Archive that is not where Upload puts it.
func (u Untar) Validate() error {
	err := validateArchive(u.archive(), u.Dest, u.Creates, u.Owner, u.Group)
	if u.StripComponents < 0 {
		err = errors.Join(err, fmt.Errorf("StripComponents: %d is negative", u.StripComponents))
	}
	if u.Upload != nil {
		if uerr := u.Upload.Validate(); uerr != nil {
			err = errors.Join(err, fmt.Errorf("Upload: %w", uerr))
		}
		if u.Archive != "" && u.Archive != u.Upload.Dest {
			err = errors.Join(err, fmt.Errorf("Archive: %s is not Upload.Dest %s (leave Archive empty)", u.Archive, u.Upload.Dest))
		}
	}
	return err
}

// PathsRead is, with Upload, the uploaded archive and the guard path.
func (u Untar) PathsRead() []PathRead {
	if u.Upload == nil {
		return nil
	}
	return []PathRead{{Path: u.Upload.Dest}, {Path: cmp.Or(u.Creates, u.Dest)}}
}

// Check tests the guard path and, with Upload, the uploaded archive, in one command.
func (u Untar) Check(ctx context.Context, c transport.Conn) (*Change, error) {
	w := ownership{Owner: u.Owner, Group: u.Group}
	strip := ""
	if u.StripComponents > 0 {
		strip = fmt.Sprintf(" --strip-components=%d", u.StripComponents)
	}
	extract := shell.Join("tar", "-x", "-f", u.archive(), "-C") + ` "$t"` + strip
	if u.Upload == nil {
		return checkExtract(ctx, c, u.String(), u.Dest, u.Creates, w, "", extract)
	}
	creates := cmp.Or(u.Creates, u.Dest)
	p, extracted, err := u.Upload.plan(ctx, c, creates)
	if err != nil {
		return nil, err
	}
	switch {
	case extracted:
		// The tree is there: only the archive may be off.
		return p.change, nil
	case !p.content:
		// The archive on the host is the right one: unpack it, then fix its mode,
		// owners or time if they are off.
		ch := extractChange(c, u.String(), u.Dest, creates, w, "", extract)
		if p.change != nil {
			ch.Summary += "; " + p.change.Summary
			unpack, fix := ch.Apply, p.change.Apply
			ch.Apply = func(ctx context.Context) error {
				if err := unpack(ctx); err != nil {
					return err
				}
				return fix(ctx)
			}
		}
		return ch, nil
	}
	flag, err := compressionFlag(u.Upload.Src)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", u, err)
	}
	if u.SendPlain && flag == "-z " {
		return u.plainChange(c, p, strip, w, creates), nil
	}
	// The archive is written beside its destination as it arrives ("$a"), through tee,
	// while tar reads the same bytes; tee -p goes on writing the archive should tar stop
	// reading early. The archive is renamed into place only when tar succeeded and it
	// has every byte.
	a := shell.Quote(u.Upload.Dest)
	size := p.local.Size()
	mtime := p.local.ModTime()
	unpack := `a=$(mktemp ` + shell.Quote(transport.TempBeside(u.Upload.Dest)) + `); ` +
		`trap 'rm -rf "$t" "$a"' EXIT; ` +
		`st=$( { { tee -p -- "$a"; echo "$?" >&3; } | tar -x ` + flag + `-f - -C "$t"` + strip + `; } 3>&1 ); ` +
		`[ "$st" = 0 ] || { echo ` + shell.Quote("could not write the archive beside "+u.Upload.Dest) + ` >&2; exit 1; }; ` +
		`[ "$(stat -c %s -- "$a")" = ` + fmt.Sprint(size) + ` ] || { echo "the archive arrived incomplete" >&2; exit 1; }; ` +
		fmt.Sprintf(`chmod %04o "$a"; `, uint32(p.final.Mode))
	if o := p.final.chown(); o != "" {
		unpack += `chown -- ` + shell.Quote(o) + ` "$a"; `
	}
	unpack += `touch -m -d @` + mtimeString(mtime) + ` -- "$a"; mv -f -T -- "$a" ` + a
	script := extractScript(u.Dest, w, "", unpack)
	src := u.Upload.Src
	return &Change{
		Summary: fmt.Sprintf("%s, unpacked into %s as it arrives (%s is missing)", p.change.Summary, u.Dest, creates),
		Apply: func(ctx context.Context) error {
			f, err := os.Open(src)
			if err != nil {
				return fmt.Errorf("%s: %w", u, err)
			}
			defer f.Close()
			// A long transfer says how far it has got (see WithProgress).
			body, stop := ProgressReader(ctx, f, u.String(), size)
			_, err = transport.OutputWithInput(ctx, c, script, body)
			stop()
			if err != nil {
				return fmt.Errorf("%s: %w", u, err)
			}
			return nil
		},
	}, nil
}

// plainChange sends the archive to Upload.Dest and, at the same time, its plain tar
// (see SendPlain) to tar on the host. Each half lands whole or not at all (the upload
// renames its file into place, the unpacking its tree), so a host where one failed is
// one the next check finds half done and finishes.
func (u Untar) plainChange(c transport.Conn, p uploadPlan, strip string, w ownership, creates string) *Change {
	// tar may stop reading at the archive's end marker; what follows is read too, so
	// that the sender never writes into a closed pipe.
	unpack := `{ tar -x -f - -C "$t"` + strip + ` || { cat >/dev/null; exit 1; }; }; cat >/dev/null`
	script := extractScript(u.Dest, w, "", unpack)
	src := u.Upload.Src
	return &Change{
		Summary: fmt.Sprintf("%s, and its plain tar unpacked into %s as it arrives (%s is missing)", p.change.Summary, u.Dest, creates),
		Apply: func(ctx context.Context) error {
			// The archive goes at once; the plain tar as soon as the cache has it. A half
			// that fails does not stop the other: each lands whole or not at all, and a
			// transfer cut off by a cancel could leave its temporary file behind.
			var g errgroup.Group
			g.Go(func() error { return p.change.Apply(ctx) })
			g.Go(func() error {
				dir := u.CacheDir
				if dir == "" {
					var err error
					if dir, err = DefaultPlainTarCache(); err != nil {
						return err
					}
				}
				f, size, err := OpenPlainTar(src, dir)
				if err != nil {
					return err
				}
				defer f.Close()
				// A long transfer says how far it has got (see WithProgress).
				body, stop := ProgressReader(ctx, f, u.String(), size)
				defer stop()
				_, err = transport.OutputWithInput(ctx, c, script, body)
				return err
			})
			if err := g.Wait(); err != nil {
				return fmt.Errorf("%s: %w", u, err)
			}
			return nil
		},
	}
}

// compressionFlag is tar's option for the compression of the local archive at p, read
// from its first bytes ("" for a plain tar): tar cannot detect it on a pipe.
func compressionFlag(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	head := make([]byte, 6)
	n, err := io.ReadFull(f, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return "", err
	}
	head = head[:n]
	for _, m := range []struct {
		magic []byte
		flag  string
	}{
		{[]byte{0x1f, 0x8b}, "-z "},
		{[]byte("BZh"), "-j "},
		{[]byte{0xfd, '7', 'z', 'X', 'Z', 0}, "-J "},
		{[]byte{0x28, 0xb5, 0x2f, 0xfd}, "--zstd "},
		{[]byte{0x5d, 0, 0}, "--lzma "},
	} {
		if bytes.HasPrefix(head, m.magic) {
			return m.flag, nil
		}
	}
	return "", nil
}

// Unzip unpacks a zip archive already on the host, like Untar. The host needs `unzip`
// (install it first with Packages); without it Apply fails saying so.
type Unzip struct {
	Archive string
	Dest    string
	Creates string
	Owner   string
	Group   string
}

func (u Unzip) String() string { return "unzip " + u.Archive + " into " + u.Dest }

// Validate rejects relative paths and bad owners.
func (u Unzip) Validate() error {
	return validateArchive(u.Archive, u.Dest, u.Creates, u.Owner, u.Group)
}

// Check tests the guard path.
func (u Unzip) Check(ctx context.Context, c transport.Conn) (*Change, error) {
	need := `command -v unzip >/dev/null 2>&1 || { echo "unzip is not installed on the host: install it first (steps.Packages)" >&2; exit 127; }; `
	extract := shell.Join("unzip", "-q", "-o", u.Archive, "-d") + ` "$t"`
	return checkExtract(ctx, c, u.String(), u.Dest, u.Creates, ownership{Owner: u.Owner, Group: u.Group}, need, extract)
}

func validateArchive(archive, dest, creates, owner, group string) error {
	errs := []error{checkAbsPath("Archive", archive), checkAbsPath("Dest", dest),
		checkAccount("Owner", owner), checkAccount("Group", group)}
	if creates != "" {
		errs = append(errs, checkAbsPath("Creates", creates))
	}
	return errors.Join(errs...)
}

// checkExtract is the check shared by Untar and Unzip: converged when the guard exists,
// else extractChange.
func checkExtract(ctx context.Context, c transport.Conn, name, dest, creates string, w ownership, need, extract string) (*Change, error) {
	if creates == "" {
		creates = dest
	}
	out, err := transport.Output(ctx, c, "if "+existsTest(creates)+"; then echo yes; else echo no; fi")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if out == "yes\n" {
		return nil, nil
	}
	return extractChange(c, name, dest, creates, w, need, extract), nil
}

// extractChange runs extract (a shell line unpacking into "$t") by extractScript.
func extractChange(c transport.Conn, name, dest, creates string, w ownership, need, extract string) *Change {
	script := extractScript(dest, w, need, extract)
	return &Change{
		Summary: fmt.Sprintf("%s (%s is missing)", name, creates),
		Apply: func(ctx context.Context) error {
			if _, err := transport.Output(ctx, c, script); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			return nil
		},
	}
}

// extractScript runs need, then unpack (which fills "$t", a temporary directory beside
// dest, and may set its own trap, which must remove "$t"), gives the tree w's owners
// and moves it into place; on a failure nothing is left beside dest.
func extractScript(dest string, w ownership, need, unpack string) string {
	d := shell.Quote(dest)
	script := need + "set -e; t=$(mktemp -d " + shell.Quote(transport.TempBeside(dest)) + `); trap 'rm -rf "$t"' EXIT; ` +
		unpack + "; "
	if o := w.chown(); o != "" {
		script += `chown -R -- ` + shell.Quote(o) + ` "$t"; `
	}
	// mktemp -d makes a 0700 directory; a directory that becomes Dest gets 0755.
	script += "if [ -e " + d + " ]; then for e in \"$t\"/* \"$t\"/.[!.]* \"$t\"/..?*; do " +
		`{ [ -e "$e" ] || [ -L "$e" ]; } || continue; mv -T -- "$e" ` + d + `/"${e##*/}"; done; ` +
		`else chmod 0755 "$t"; mv -T -- "$t" ` + d + "; fi; trap - EXIT; rm -rf \"$t\""
	return script
}
