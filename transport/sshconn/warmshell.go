package sshconn

// The command channel kept warm. Over a warm connection a run opens its command
// channel (channel.go) as a channel of shellChannelType on the daemon instead of a
// plain session: the daemon starts the shell on the host as for a session, or hands
// over one an earlier run left idle with the same line (so the same login user and
// the same become), and relays it. A run that ends with no command in flight parks
// its shell instead of ending it (parkRequest, with the channel's token), and the next
// run's commands go to that shell at once: no session to open on the host (a round
// trip) and no shell or sudo to start. Shells started through sudo with a password are
// never parked: a run that would get one would have become root without the password.
//
// The daemon keeps at most one parked shell per host connection and line. A parked
// shell that writes anything or ends (killed on the host, the connection lost) is
// closed and forgotten; one that ends just as a run takes it breaks that run's
// channel before its first command starts, and the run opens a new one (commandChannel).

import (
	"errors"
	"io"
	"sync"

	"golang.org/x/crypto/ssh"
)

const (
	// shellChannelType is the channel a run opens on the daemon for its command
	// channel; its extra data is the line that starts the shell (an exec request's
	// payload). The daemon's first line on the channel's output says which shell it
	// got: "new" (just started: the run sends its token) or "reused <token>".
	shellChannelType = "cauldron-shell@cauldron"
	// parkRequest asks the daemon to keep the channel's shell for a later run; its
	// payload is the channel's token. The run sends it only when no command is in
	// flight, and closes the channel after the answer.
	parkRequest = "cauldron-park@cauldron"
)

// hostShell is a command channel's shell on the host, as the daemon holds it.
type hostShell struct {
	host   *warmHost
	up     ssh.Channel
	client *ssh.Client
	line   string

	mu    sync.Mutex
	token string
	down  ssh.Channel // the run's channel; nil while parked
	ended bool
}

type shellLine struct{ Command string }

// serveShell serves a run's shellChannelType channel on the host's connection up.
func (h *warmHost) serveShell(up *ssh.Client, nc ssh.NewChannel) {
	var req shellLine
	if err := ssh.Unmarshal(nc.ExtraData(), &req); err != nil {
		nc.Reject(ssh.Prohibited, "bad shell line")
		return
	}
	// A parked shell may end at any time: one that ended before it is attached is
	// replaced by a new one, never handed out.
	sh := h.takeShell(up, req.Command)
	var down ssh.Channel
	var downReqs <-chan *ssh.Request
	for {
		header, fresh := "new\n", sh == nil
		if !fresh {
			header = "reused " + sh.token + "\n"
		} else {
			var err error
			if sh, err = newHostShell(h, up, req); err != nil {
				var oe *ssh.OpenChannelError
				if down != nil {
					down.Close()
				} else if errors.As(err, &oe) {
					nc.Reject(oe.Reason, oe.Message)
				} else {
					nc.Reject(ssh.ConnectionFailed, err.Error())
				}
				return
			}
		}
		if down == nil {
			var err error
			if down, downReqs, err = nc.Accept(); err != nil {
				sh.up.Close()
				return
			}
		}
		if sh.attach(down, header) {
			break
		}
		if fresh {
			// A new shell that ended at once: the run's channel ends, and the run
			// runs its commands another way.
			down.Close()
			return
		}
		sh = nil
	}
	go func() {
		io.Copy(sh.up, down)
		// The run's end of input ends the shell, unless the shell was parked first.
		if sh.attached(down) {
			sh.up.CloseWrite()
		}
	}()
	for r := range downReqs {
		if r.Type == parkRequest {
			var p struct{ Token string }
			ok := ssh.Unmarshal(r.Payload, &p) == nil && p.Token != "" && sh.park(down, p.Token)
			if ok {
				h.keepShell(sh)
			}
			r.Reply(ok, nil)
			continue
		}
		ok, err := sh.up.SendRequest(r.Type, r.WantReply, r.Payload)
		if r.WantReply {
			r.Reply(ok && err == nil, nil)
		}
	}
	// The run closed its channel without parking the shell: it ends.
	if sh.attached(down) {
		sh.up.Close()
	}
}

// newHostShell starts a shell on the host's connection up with req's line.
func newHostShell(h *warmHost, up *ssh.Client, req shellLine) (*hostShell, error) {
	upCh, upReqs, err := up.OpenChannel("session", nil)
	if err != nil {
		return nil, err
	}
	// Without waiting for the answer, as commandChannel does on a direct connection.
	if _, err := upCh.SendRequest("exec", false, ssh.Marshal(req)); err != nil {
		upCh.Close()
		return nil, err
	}
	sh := &hostShell{host: h, up: upCh, client: up, line: req.Command}
	sh.relay(upReqs)
	return sh, nil
}

// takeShell is the parked shell for line on client, if any, taken out of the parked.
func (h *warmHost) takeShell(client *ssh.Client, line string) *hostShell {
	h.parkedMu.Lock()
	defer h.parkedMu.Unlock()
	sh := h.parked[line]
	if sh == nil || sh.client != client {
		return nil
	}
	delete(h.parked, line)
	return sh
}

// keepShell parks sh, ending the one it replaces.
func (h *warmHost) keepShell(sh *hostShell) {
	h.parkedMu.Lock()
	old := h.parked[sh.line]
	if h.parked == nil {
		h.parked = map[string]*hostShell{}
	}
	h.parked[sh.line] = sh
	h.parkedMu.Unlock()
	if old != nil && old != sh {
		old.up.Close()
	}
}

// forget drops sh from the parked shells, once it ended.
func (h *warmHost) forget(sh *hostShell) {
	h.parkedMu.Lock()
	defer h.parkedMu.Unlock()
	if h.parked[sh.line] == sh {
		delete(h.parked, sh.line)
	}
}

// attach makes down the run's channel of the shell, after the header line; false when
// the shell has ended meanwhile.
func (sh *hostShell) attach(down ssh.Channel, header string) bool {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.ended {
		return false
	}
	if _, err := io.WriteString(down, header); err != nil {
		return false
	}
	sh.down = down
	return true
}

func (sh *hostShell) attached(down ssh.Channel) bool {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return sh.down == down
}

// park detaches down from the shell, which the run left idle, framed by token.
func (sh *hostShell) park(down ssh.Channel, token string) bool {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.down != down || sh.ended {
		return false
	}
	sh.down, sh.token = nil, token
	return true
}

// relay copies the shell's output and requests (exit-status) to the run attached,
// for as long as the shell lives. Output while no run is attached means the shell is
// not idle: it is closed. When the shell ends, the run's channel closes and the
// shell is forgotten.
func (sh *hostShell) relay(upReqs <-chan *ssh.Request) {
	var wg sync.WaitGroup
	copyOut := func(from io.Reader, to func(ssh.Channel) io.Writer) {
		defer wg.Done()
		buf := make([]byte, 32<<10)
		for {
			n, err := from.Read(buf)
			if n > 0 {
				sh.mu.Lock()
				if sh.down == nil {
					sh.ended = true
					sh.mu.Unlock()
					sh.up.Close()
					return
				}
				to(sh.down).Write(buf[:n])
				sh.mu.Unlock()
			}
			if err != nil {
				return
			}
		}
	}
	wg.Add(3)
	go copyOut(sh.up, func(c ssh.Channel) io.Writer { return c })
	go copyOut(sh.up.Stderr(), func(c ssh.Channel) io.Writer { return c.Stderr() })
	go func() {
		defer wg.Done()
		for r := range upReqs {
			sh.mu.Lock()
			down := sh.down
			sh.mu.Unlock()
			ok := false
			if down != nil {
				ok, _ = down.SendRequest(r.Type, r.WantReply, r.Payload)
			}
			if r.WantReply {
				r.Reply(ok, nil)
			}
		}
	}()
	go func() {
		wg.Wait()
		sh.mu.Lock()
		sh.ended = true
		down := sh.down
		sh.mu.Unlock()
		sh.up.Close()
		sh.host.forget(sh)
		if down != nil {
			down.CloseWrite()
			down.Close()
		}
	}()
}
