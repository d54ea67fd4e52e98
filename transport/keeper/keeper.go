// Package keeper keeps idle connections open between runs. A run hands the keeper (a
// per-user background process: this program, started again) a socket whose far end
// waits idle, such as a docker exec's hijacked connection to its engine with a
// command channel's shell behind it, and a later run takes that socket back and goes
// on where the first left off: no exec to create, no shell to start. The socket
// itself changes hands (SCM_RIGHTS over the keeper's unix socket), so the keeper
// relays no byte: while it keeps a socket it only watches it.
//
// The keeper listens on keeper.sock in a directory that must be the user's own and
// private (daemon.CheckPrivateDir), answers only processes of its own user
// (SO_PEERCRED), keeps at most one socket per key (the newest), and closes a kept
// socket whose far end writes anything or ends (the shell died, the container
// stopped), or that was kept longer than the idle time its run asked for. It exits
// once it keeps nothing and no run has asked anything for that idle time.
package keeper

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/cauldron-go/cauldron/transport/daemon"
)

// daemonEnv, when set, makes this program the keeper serving that directory.
const daemonEnv = "CAULDRON_KEEPER_DAEMON"

const sockName = "keeper.sock"

func init() {
	dir := os.Getenv(daemonEnv)
	if dir == "" {
		return
	}
	os.Unsetenv(daemonEnv)
	if err := serve(dir, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "cauldron keeper:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// Dir is the keeper's default directory: $XDG_RUNTIME_DIR/cauldron-keeper, else
// cauldron-keeper-<uid> in the temporary directory.
func Dir() string {
	if rt := os.Getenv("XDG_RUNTIME_DIR"); rt != "" {
		return filepath.Join(rt, "cauldron-keeper")
	}
	return filepath.Join(os.TempDir(), "cauldron-keeper-"+strconv.Itoa(os.Getuid()))
}

// request is one message of a run to the keeper; a park carries the socket with it.
type request struct {
	Op    string        `json:"op"` // "take", "park" or "stop"
	Key   string        `json:"key,omitempty"`
	Token string        `json:"token,omitempty"`
	Idle  time.Duration `json:"idle,omitempty"`
}

// answer is the keeper's; a take that found a socket carries it with it.
type answer struct {
	OK    bool   `json:"ok"`
	Token string `json:"token,omitempty"`
	Error string `json:"error,omitempty"`
}

// exchangeTimeout bounds one request and its answer: the keeper answers at once.
const exchangeTimeout = 5 * time.Second

// Take asks the keeper in dir for the socket kept under key, and takes it: the socket
// and the token it was parked with, or ok false when it keeps none there (or no keeper
// runs). The caller owns the socket from then on.
func Take(ctx context.Context, dir, key string) (conn net.Conn, token string, ok bool, err error) {
	if err := daemon.CheckPrivateDir(dir, "keeper directory"); err != nil {
		return nil, "", false, err
	}
	wire, err := dialKeeper(ctx, dir)
	if err != nil {
		return nil, "", false, nil // none runs: nothing is kept
	}
	defer wire.Close()
	ans, f, err := exchange(ctx, wire, request{Op: "take", Key: key}, nil)
	if err != nil {
		return nil, "", false, err
	}
	if !ans.OK {
		if f != nil {
			f.Close()
		}
		if ans.Error != "" {
			return nil, "", false, errors.New("keeper: " + ans.Error)
		}
		return nil, "", false, nil
	}
	if f == nil {
		return nil, "", false, errors.New("keeper: the answer came without its socket")
	}
	defer f.Close()
	c, err := net.FileConn(f)
	if err != nil {
		return nil, "", false, fmt.Errorf("keeper: %w", err)
	}
	return c, ans.Token, true, nil
}

// Park hands c to the keeper in dir, starting the keeper when none runs, to keep under
// key with token for at most idle (another socket kept under key is closed). c stays
// the caller's to close: the keeper holds a socket of its own for the same
// connection. token is what the next run needs to go on with it; it must be no secret.
func Park(ctx context.Context, dir, key, token string, c syscall.Conn, idle time.Duration) error {
	if err := daemon.CheckPrivateDir(dir, "keeper directory"); err != nil {
		return err
	}
	sock := filepath.Join(dir, sockName)
	wire, err := dialKeeper(ctx, dir)
	if err != nil {
		if err := daemon.Start(ctx, dir, "keeper", daemonEnv, sock, "keeper"); err != nil {
			return err
		}
		if wire, err = dialKeeper(ctx, dir); err != nil {
			return fmt.Errorf("connect to the keeper: %w", err)
		}
	}
	defer wire.Close()
	raw, err := c.SyscallConn()
	if err != nil {
		return fmt.Errorf("keeper: %w", err)
	}
	var ans answer
	var xerr error
	if err := raw.Control(func(fd uintptr) {
		ans, _, xerr = exchange(ctx, wire, request{Op: "park", Key: key, Token: token, Idle: idle}, syscall.UnixRights(int(fd)))
	}); err != nil {
		return fmt.Errorf("keeper: %w", err)
	}
	if xerr != nil {
		return xerr
	}
	if !ans.OK {
		return errors.New("keeper: " + ans.Error)
	}
	return nil
}

// Stop makes the keeper in dir close every socket it keeps and exit; it returns at once
// when none runs there.
func Stop(dir string) error {
	if err := daemon.CheckPrivateDir(dir, "keeper directory"); err != nil {
		return err
	}
	wire, err := dialKeeper(context.Background(), dir)
	if err != nil {
		return nil // none runs
	}
	defer wire.Close()
	if _, _, err := exchange(context.Background(), wire, request{Op: "stop"}, nil); err != nil {
		return fmt.Errorf("stop the keeper: %w", err)
	}
	return nil
}

func dialKeeper(ctx context.Context, dir string) (*net.UnixConn, error) {
	d := net.Dialer{Timeout: time.Second}
	c, err := d.DialContext(ctx, "unix", filepath.Join(dir, sockName))
	if err != nil {
		return nil, err
	}
	return c.(*net.UnixConn), nil
}

// exchange sends req (with the rights in oob) and reads the answer, and the socket
// that may come with it.
func exchange(ctx context.Context, wire *net.UnixConn, req request, oob []byte) (answer, *os.File, error) {
	deadline := time.Now().Add(exchangeTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	wire.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { wire.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	line, _ := json.Marshal(req)
	if _, _, err := wire.WriteMsgUnix(append(line, '\n'), oob, nil); err != nil {
		return answer{}, nil, fmt.Errorf("keeper: %w", err)
	}
	raw, f, err := readMessage(wire)
	if err != nil {
		return answer{}, nil, fmt.Errorf("keeper: %w", err)
	}
	var ans answer
	if err := json.Unmarshal(raw, &ans); err != nil {
		if f != nil {
			f.Close()
		}
		return answer{}, nil, fmt.Errorf("keeper: bad answer: %w", err)
	}
	return ans, f, nil
}

// maxMessage bounds one message: a request or an answer is one short JSON line.
const maxMessage = 64 << 10

// readMessage reads one line and at most one socket sent with it; any other
// descriptor that came along is closed.
func readMessage(c *net.UnixConn) ([]byte, *os.File, error) {
	var line []byte
	var kept *os.File
	fail := func(err error) ([]byte, *os.File, error) {
		if kept != nil {
			kept.Close()
		}
		return nil, nil, err
	}
	buf := make([]byte, 4096)
	oob := make([]byte, syscall.CmsgSpace(4*4))
	for {
		n, oobn, flags, _, err := c.ReadMsgUnix(buf, oob)
		if oobn > 0 {
			msgs, perr := syscall.ParseSocketControlMessage(oob[:oobn])
			for _, m := range msgs {
				fds, ferr := syscall.ParseUnixRights(&m)
				if ferr != nil {
					continue
				}
				for _, fd := range fds {
					if kept == nil {
						kept = os.NewFile(uintptr(fd), "kept socket")
					} else {
						syscall.Close(fd)
					}
				}
			}
			if perr != nil {
				return fail(perr)
			}
		}
		if flags&syscall.MSG_CTRUNC != 0 {
			return fail(errors.New("descriptors cut off"))
		}
		line = append(line, buf[:n]...)
		if i := bytes.IndexByte(line, '\n'); i >= 0 {
			return line[:i], kept, nil
		}
		if len(line) > maxMessage {
			return fail(errors.New("message too long"))
		}
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return fail(err)
		}
		if n == 0 && oobn == 0 {
			return fail(io.ErrUnexpectedEOF)
		}
	}
}

// kept is one socket the keeper holds.
type kept struct {
	conn  net.Conn
	token string
	until time.Time
	// taking is set (under keeper.mu) when a run takes the socket: the watcher's read
	// then ends on a deadline and leaves the socket open.
	taking bool
	// healthy is the watcher's verdict, set before watched is closed: its read ended on
	// the taker's deadline with nothing read.
	healthy bool
	watched chan struct{}
}

type keeper struct {
	mu       sync.Mutex
	kept     map[string]*kept
	lastUsed time.Time
	idle     time.Duration
	stop     chan struct{}
	stopOnce sync.Once
}

// serve is the keeper: it listens on dir/keeper.sock, says "ready" on ready, and
// returns once it keeps nothing and has been idle for the longest idle time asked.
func serve(dir string, ready io.Writer) error {
	if err := daemon.CheckPrivateDir(dir, "keeper directory"); err != nil {
		return err
	}
	ln, err := daemon.Listen(dir, "keeper")
	if err != nil {
		return err
	}
	k := &keeper{kept: map[string]*kept{}, lastUsed: time.Now(), idle: 60 * time.Second, stop: make(chan struct{})}
	daemon.Ready(ready)
	daemon.AcceptEach(ln, k.serve)
	for {
		select {
		case <-k.stop:
		case <-time.After(time.Second):
			if !k.expire() {
				continue
			}
		}
		break
	}
	daemon.Unlisten(dir, "keeper", ln)
	k.mu.Lock()
	defer k.mu.Unlock()
	for key, kp := range k.kept {
		delete(k.kept, key)
		kp.conn.Close()
	}
	return nil
}

// expire closes the sockets kept past their time, and says whether the keeper is done:
// it keeps nothing and has been asked nothing for its idle time.
func (k *keeper) expire() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	now := time.Now()
	for key, kp := range k.kept {
		if now.After(kp.until) {
			delete(k.kept, key)
			kp.conn.Close()
		}
	}
	return len(k.kept) == 0 && now.Sub(k.lastUsed) >= k.idle
}

// serve answers one request of a run of this user.
func (k *keeper) serve(c *net.UnixConn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(exchangeTimeout))
	if !sameUser(c) {
		return
	}
	raw, f, err := readMessage(c)
	if err != nil {
		return
	}
	var req request
	ans := answer{}
	var rights []byte
	if err := json.Unmarshal(raw, &req); err != nil {
		ans.Error = "bad request"
	} else {
		k.mu.Lock()
		k.lastUsed = time.Now()
		if req.Idle > k.idle {
			k.idle = req.Idle
		}
		k.mu.Unlock()
		switch req.Op {
		case "take":
			var taken *os.File
			ans, taken = k.take(req.Key)
			if taken != nil {
				defer taken.Close()
				rights = syscall.UnixRights(int(taken.Fd()))
			}
		case "park":
			ans = k.park(req, f)
			f = nil // park owns it now
		case "stop":
			ans.OK = true
			k.stopOnce.Do(func() { close(k.stop) })
		default:
			ans.Error = "unknown request " + strconv.Quote(req.Op)
		}
	}
	if f != nil {
		f.Close()
	}
	line, _ := json.Marshal(ans)
	c.WriteMsgUnix(append(line, '\n'), rights, nil)
}

// take hands out the socket kept under key, if it is still idle and open.
func (k *keeper) take(key string) (answer, *os.File) {
	k.mu.Lock()
	kp := k.kept[key]
	if kp != nil {
		delete(k.kept, key)
		kp.taking = true
	}
	k.mu.Unlock()
	if kp == nil {
		return answer{}, nil
	}
	// End the watcher's read without taking a byte: a deadline in the past.
	kp.conn.SetReadDeadline(time.Unix(1, 0))
	<-kp.watched
	if !kp.healthy {
		return answer{}, nil
	}
	defer kp.conn.Close()
	kp.conn.SetReadDeadline(time.Time{})
	f, err := kp.conn.(interface{ File() (*os.File, error) }).File()
	if err != nil {
		return answer{Error: err.Error()}, nil
	}
	return answer{OK: true, Token: kp.token}, f
}

// park keeps f's socket under req.Key; f is closed either way (the keeper's socket is
// a copy of its own).
func (k *keeper) park(req request, f *os.File) answer {
	if f == nil {
		return answer{Error: "park without a socket"}
	}
	conn, err := net.FileConn(f)
	f.Close()
	if err != nil {
		return answer{Error: err.Error()}
	}
	if req.Key == "" || req.Token == "" || req.Idle <= 0 {
		conn.Close()
		return answer{Error: "park needs a key, a token and an idle time"}
	}
	kp := &kept{conn: conn, token: req.Token, until: time.Now().Add(req.Idle), watched: make(chan struct{})}
	k.mu.Lock()
	old := k.kept[req.Key]
	k.kept[req.Key] = kp
	k.mu.Unlock()
	if old != nil {
		old.conn.Close()
	}
	go k.watch(req.Key, kp)
	return answer{OK: true}
}

// watch reads from a kept socket until a taker's deadline ends the read (healthy) or
// the far end writes or ends, which closes it: a shell that printed while idle is no
// longer at a frame's boundary, and one that ended is of no use.
func (k *keeper) watch(key string, kp *kept) {
	var b [1]byte
	n, err := kp.conn.Read(b[:])
	k.mu.Lock()
	if kp.taking && n == 0 && errors.Is(err, os.ErrDeadlineExceeded) {
		kp.healthy = true
	} else {
		if k.kept[key] == kp {
			delete(k.kept, key)
		}
		kp.conn.Close()
	}
	k.mu.Unlock()
	close(kp.watched)
}

// sameUser says whether the process at c's other end runs as this process's user.
func sameUser(c *net.UnixConn) bool {
	raw, err := c.SyscallConn()
	if err != nil {
		return false
	}
	var cred *syscall.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	}); err != nil || cerr != nil {
		return false
	}
	return int(cred.Uid) == os.Getuid()
}
