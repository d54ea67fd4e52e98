package steps

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/cauldron-go/cauldron/shell"
	"github.com/cauldron-go/cauldron/transport"
)

// SwitchRelease is the last move of a release, made once the service runs it: Link (the
// app's folder as people know it, source/mago3d-admin) becomes a symbolic link to the
// release folder Link@Release, Link.previous one to the release that ran before (kept
// for a quick roll back), and every other Link@* folder is removed, with the leftovers
// of an unpack that was killed (.mago3d-admin@*.cauldron-*).
//
// The service does not use Link: its configuration names the release folder itself,
// and a service reads it at start (Tomcat canonicalises its docBase then, so a link it
// used would be followed to the old folder until the restart, and to a missing one
// after a prune). Link tells people which release runs.
//
// Run it as the handler after the restart, notified by the step that writes the
// configuration naming the release (server.xml): it refuses (fails, and stays owed)
// while Unit's main process started before Config was last written, since that process
// may still serve the release Link names. A folder Link left from before releases had
// folders of their own is moved to Link@<the sum in its marker> (or Link@unpacked-by-hand)
// and is the previous release, or removed when that release is unpacked already.
type SwitchRelease struct {
	// Link is the app's folder as people know it; the release folders are beside it.
	Link string
	// Release names the release the service runs now (UnpackWAR's Dest is Link@Release).
	Release string
	// Unit is the systemd unit serving the release; Config the file that names it.
	Unit, Config string
	// Owner and Group own the links.
	Owner, Group string
}

// PreviousSuffix names the link to the release that ran before: Link.previous.
const PreviousSuffix = ".previous"

// unknownRelease names the folder of an app unpacked without UnpackWAR's marker.
const unknownRelease = "unpacked-by-hand"

func (s SwitchRelease) String() string {
	return "switch " + s.Link + " to release " + s.Release
}

// Validate rejects relative paths and a release that is not a plain name.
func (s SwitchRelease) Validate() error {
	var errs []error
	if !path.IsAbs(s.Link) || path.Clean(s.Link) != s.Link || s.Link == "/" {
		errs = append(errs, fmt.Errorf("SwitchRelease: link %q is not a clean absolute path", s.Link))
	}
	if s.Release == "" || strings.ContainsAny(s.Release, "/\x00") || s.Release == "." || s.Release == ".." {
		errs = append(errs, fmt.Errorf("SwitchRelease: release %q is not a folder name", s.Release))
	}
	if s.Unit == "" || !path.IsAbs(s.Config) {
		errs = append(errs, errors.New("SwitchRelease needs a Unit and an absolute Config path"))
	}
	return errors.Join(errs...)
}

// releaseState is what Check reads on the host.
type releaseState struct {
	link      string // "link", "dir", "none" or "other"
	target    string // the link's target, or the marker's sum of a folder
	previous  string // the previous link's target; "" for none
	releases  []string
	leftovers []string
	pid       int
	// started is "after" when the unit's main process started after Config was last
	// written, "before" when before, "none" without a process.
	started string
}

// Check reads the links, the release folders and the unit's start time.
func (s SwitchRelease) Check(ctx context.Context, c transport.Conn) (*Change, error) {
	dir, base := path.Split(s.Link)
	l := shell.Quote(s.Link)
	script := "l=" + l + "; " +
		`if [ -L "$l" ]; then printf 'link %s\n' "$(readlink -- "$l")"; ` +
		`elif [ -d "$l" ]; then printf 'dir %s\n' "$(cat -- "$l/` + warMarker + `" 2>/dev/null)"; ` +
		`elif [ -e "$l" ]; then echo other; else echo none; fi; ` +
		`if [ -L "$l` + PreviousSuffix + `" ]; then printf 'previous %s\n' "$(readlink -- "$l` + PreviousSuffix + `")"; fi; ` +
		`for f in "$l"@*; do if [ -d "$f" ] && [ ! -L "$f" ]; then printf 'release %s\n' "${f##*/}"; fi; done; ` +
		"for f in " + shell.Quote(dir+"."+base) + `@*.cauldron-*; do if [ -e "$f" ]; then printf 'leftover %s\n' "${f##*/}"; fi; done; ` +
		"pid=$(systemctl show -p MainPID --value " + shell.Quote(s.Unit) + ` 2>/dev/null) || pid=0; ` +
		`if [ "${pid:-0}" -gt 0 ] 2>/dev/null && [ -r /proc/$pid/stat ]; then ` +
		// The process's age (uptime less its start, field 22 of /proc/PID/stat in clock
		// ticks after boot; the command name before it may hold spaces, so count from
		// its closing ')') against the configuration's age: both to 10 ms, where whole
		// seconds of start time and boot time could each be a second off.
		`ticks=$(sed 's/.*) //' /proc/$pid/stat | awk '{print $20}'); read up idle < /proc/uptime; ` +
		`now=$(date +%s.%N); m=$(stat -c %.9Y -- ` + shell.Quote(s.Config) + ` 2>/dev/null || echo 0); ` +
		`echo "unit $pid $(awk -v up="$up" -v t="$ticks" -v hz="$(getconf CLK_TCK)" -v now="$now" -v m="$m" 'BEGIN { print (up - t / hz <= now - m) ? "after" : "before" }')"; ` +
		`else echo 'unit 0 none'; fi`
	out, err := transport.Output(ctx, c, script)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s, err)
	}
	st, err := parseReleaseState(out)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s, err)
	}
	return s.plan(c, base, st)
}

func parseReleaseState(out string) (releaseState, error) {
	var st releaseState
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		key, val, _ := strings.Cut(sc.Text(), " ")
		switch key {
		case "link", "dir", "none", "other":
			st.link, st.target = key, val
		case "previous":
			st.previous = val
		case "release":
			st.releases = append(st.releases, val)
		case "leftover":
			st.leftovers = append(st.leftovers, val)
		case "unit":
			pid, started, _ := strings.Cut(val, " ")
			n, err := strconv.Atoi(pid)
			if err != nil || !slices.Contains([]string{"after", "before", "none"}, started) {
				return st, fmt.Errorf("read the unit's start: %q", val)
			}
			st.pid, st.started = n, started
		}
	}
	if st.link == "" {
		return st, fmt.Errorf("unexpected answer from the host: %q", out)
	}
	return st, nil
}

// plan turns what the host has into the change, or nil when the links are right and
// no other release is left.
func (s SwitchRelease) plan(c transport.Conn, base string, st releaseState) (*Change, error) {
	current := base + "@" + s.Release
	if !slices.Contains(st.releases, current) {
		return nil, fmt.Errorf("%s: the release folder %s is not there (UnpackWAR unpacks it)", s, path.Join(path.Dir(s.Link), current))
	}
	if st.pid > 0 && st.started != "after" {
		return nil, fmt.Errorf("%s: %s (pid %d) started before %s was last written, so it may still serve the release %s names; "+
			"the restart is owed, and this runs again after it", s, s.Unit, st.pid, s.Config, s.Link)
	}
	var (
		script, what []string
		ran          string // the release that ran before this one: the link's target
	)
	q := func(name string) string { return shell.Quote(name) }
	switch st.link {
	case "other":
		return nil, fmt.Errorf("%s: %s is neither a folder nor a symbolic link; move it away", s, s.Link)
	case "link":
		ran = st.target
	case "dir":
		// The app's folder from before releases had folders: the release that ran.
		name := base + "@" + unknownRelease
		if len(st.target) >= 12 && isHex(st.target) {
			name = base + "@" + st.target[:12]
		}
		if slices.Contains(st.releases, name) {
			script = append(script, "rm -rf -- "+q(base))
			what = append(what, "remove the folder "+base+" (its release is "+name+")")
		} else {
			script = append(script, "mv -T -- "+q(base)+" "+q(name))
			what = append(what, "move the folder "+base+" to "+name)
			st.releases = append(st.releases, name)
		}
		ran = name
	}
	previous := st.previous
	if ran != "" && path.Base(ran) != current {
		previous = ran
	}
	if path.Base(previous) == current {
		previous = ""
	}
	keep := map[string]bool{current: true}
	if previous != "" && (!path.IsAbs(previous) || path.Dir(previous) == path.Dir(s.Link)) {
		keep[path.Base(previous)] = true
	}
	link := func(name, target string) {
		tmp := path.Base(transport.TempName(path.Join(path.Dir(s.Link), name)))
		line := "ln -s -- " + q(target) + " " + q(tmp) + "; "
		if s.Owner != "" {
			line += "chown -h -- " + q(s.Owner+":"+s.Group) + " " + q(tmp) + "; "
		}
		script = append(script, line+"mv -T -- "+q(tmp)+" "+q(name))
	}
	if st.link != "link" || st.target != current {
		link(base, current)
		what = append(what, base+" -> "+current)
	}
	switch {
	case previous != "" && previous != st.previous:
		link(base+PreviousSuffix, previous)
		what = append(what, base+PreviousSuffix+" -> "+previous)
	case previous == "" && st.previous != "":
		script = append(script, "rm -f -- "+q(base+PreviousSuffix))
		what = append(what, "remove "+base+PreviousSuffix)
	}
	for _, r := range st.releases {
		if !keep[r] {
			script = append(script, "rm -rf -- "+q(r))
			what = append(what, "remove "+r)
		}
	}
	for _, r := range st.leftovers {
		script = append(script, "rm -rf -- "+q(r))
		what = append(what, "remove the leftover "+r)
	}
	if len(script) == 0 {
		return nil, nil
	}
	line := "set -e; cd -- " + q(path.Dir(s.Link)) + "; " + strings.Join(script, "; ")
	return &Change{Summary: "release " + current + ": " + strings.Join(what, ", "), Apply: func(ctx context.Context) error {
		if _, err := transport.Output(ctx, c, line); err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
		return nil
	}}, nil
}

func isHex(s string) bool {
	for _, r := range s {
		if !strings.ContainsRune("0123456789abcdef", r) {
			return false
		}
	}
	return s != ""
}
