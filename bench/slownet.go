package bench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cauldron-go/cauldron/lab"
)

// A slow network for part c where the kernel has no netem (this machine's has
// CONFIG_NET_SCH_NETEM unset): what `tc qdisc add dev IF root netem delay D loss P`
// does to the packets a lab host sends, done by the kernel's netfilter queue
// (NFQUEUE, nfnetlink_queue) and this process. An iptables rule in this machine's
// network namespace hands every packet a lab host sends it to a queue; this process
// holds each one D before it lets it go, and drops a fraction P of them. The packets
// are real and so is TCP: it measures the longer round trip, and a dropped segment
// costs a real retransmission (a tail loss probe or a retransmission timeout), as on
// a lossy link. Only the scheduling of the delay is in user space: a packet waits at
// least D, a little more when this process is slow to be scheduled.
//
// A netem qdisc holds packets in the kernel, where the machine's load does not reach;
// this process is scheduled like any other, so how late each packet was let go after
// its delay is measured (Lateness) and printed in the bench's notes: what the stand-in
// added to the delay asked for.
//
// The rules carry --queue-bypass: packets pass untouched when no process serves the
// queue, so a bench that dies leaves a lab that works; closing removes the rules, and
// a rule a killed bench left is removed by the next one before it adds its own.

// Netlink and nfnetlink_queue constants (linux/netfilter/nfnetlink_queue.h).
const (
	nfnlSubsysQueue  = 3
	nfqnlMsgPacket   = 0
	nfqnlMsgVerdict  = 1
	nfqnlMsgConfig   = 2
	nfqaPacketHdr    = 1
	nfqaVerdictHdr   = 2
	nfqaCfgCmd       = 1
	nfqaCfgParams    = 2
	nfqaCfgQueueMax  = 3
	nfqnlCfgCmdBind  = 1
	nfqnlCopyMeta    = 1
	nfAccept         = 1
	nfDrop           = 0
	nlaTypeMask      = ^uint16(unix.NLA_F_NESTED | unix.NLA_F_NET_BYTEORDER)
	netlinkHeaderLen = unix.SizeofNlMsghdr
	nfgenHeaderLen   = 4
)

// packetQueue serves one netfilter queue: each packet is let go delay after it came,
// or dropped with probability loss.
type packetQueue struct {
	fd    int
	num   uint16
	delay time.Duration
	loss  float64

	held    chan heldPacket
	closed  atomic.Bool
	wg      sync.WaitGroup
	packets atomic.Int64
	dropped atomic.Int64
	holding atomic.Int64 // packets held now
	most    atomic.Int64 // the most packets held at once
	err     atomic.Pointer[error]

	lateMu sync.Mutex
	late   []time.Duration // how long after its due time each packet was let go
}

type heldPacket struct {
	id  uint32
	due time.Time
}

// openPacketQueue binds queue num in the network namespace at nsPath (a
// /proc/PID/ns/net) and starts serving it. The socket is made inside that namespace,
// on a thread of its own that is thrown away if it cannot come back to ours.
func openPacketQueue(nsPath string, num uint16, delay time.Duration, loss float64) (*packetQueue, error) {
	type made struct {
		fd  int
		err error
	}
	res := make(chan made, 1)
	go func() {
		runtime.LockOSThread()
		// Not unlocked when the way back fails: the thread then ends with this goroutine.
		fd, back, err := socketIn(nsPath)
		if back {
			runtime.UnlockOSThread()
		}
		res <- made{fd, err}
	}()
	m := <-res
	if m.err != nil {
		return nil, m.err
	}
	q := &packetQueue{fd: m.fd, num: num, delay: delay, loss: loss, held: make(chan heldPacket, 1<<16)}
	if err := q.configure(); err != nil {
		unix.Close(q.fd)
		return nil, err
	}
	q.wg.Add(2)
	go q.receive()
	go q.release()
	return q, nil
}

// socketIn makes a netfilter netlink socket in the network namespace at nsPath, from
// a locked thread; back says the thread is in its own namespace again.
func socketIn(nsPath string) (fd int, back bool, err error) {
	own, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		return -1, true, err
	}
	defer own.Close()
	target, err := os.Open(nsPath)
	if err != nil {
		return -1, true, err
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		return -1, true, fmt.Errorf("enter the network namespace %s: %w", nsPath, err)
	}
	fd, err = unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_NETFILTER)
	if berr := unix.Setns(int(own.Fd()), unix.CLONE_NEWNET); berr != nil {
		if err == nil {
			unix.Close(fd)
		}
		return -1, false, fmt.Errorf("come back from the network namespace %s: %w", nsPath, berr)
	}
	if err != nil {
		return -1, true, fmt.Errorf("netfilter netlink socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return -1, true, fmt.Errorf("bind the netlink socket: %w", err)
	}
	// A receive that times out lets Close end the reader.
	tv := unix.NsecToTimeval((200 * time.Millisecond).Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		unix.Close(fd)
		return -1, true, err
	}
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 4<<20)
	return fd, true, nil
}

// message is a netlink message to the queue subsystem: header, nfgenmsg, attributes.
func (q *packetQueue) message(msgType uint16, flags uint16, attrs ...[]byte) []byte {
	b := make([]byte, netlinkHeaderLen+nfgenHeaderLen)
	for _, a := range attrs {
		b = append(b, a...)
	}
	binary.NativeEndian.PutUint32(b[0:], uint32(len(b)))
	binary.NativeEndian.PutUint16(b[4:], nfnlSubsysQueue<<8|msgType)
	binary.NativeEndian.PutUint16(b[6:], unix.NLM_F_REQUEST|flags)
	b[netlinkHeaderLen] = unix.AF_UNSPEC
	binary.BigEndian.PutUint16(b[netlinkHeaderLen+2:], q.num)
	return b
}

// attr is one netlink attribute, padded to 4 bytes.
func attr(typ uint16, payload []byte) []byte {
	n := unix.SizeofNlAttr + len(payload)
	b := make([]byte, (n+3)&^3)
	binary.NativeEndian.PutUint16(b[0:], uint16(n))
	binary.NativeEndian.PutUint16(b[2:], typ)
	copy(b[unix.SizeofNlAttr:], payload)
	return b
}

// configure binds the queue and asks for packet ids only, each step acknowledged.
func (q *packetQueue) configure() error {
	bind := []byte{nfqnlCfgCmdBind, 0, 0, 0}
	binary.BigEndian.PutUint16(bind[2:], unix.AF_INET)
	params := make([]byte, 5)
	params[4] = nfqnlCopyMeta
	maxLen := binary.BigEndian.AppendUint32(nil, 1<<14)
	for _, a := range [][]byte{attr(nfqaCfgCmd, bind), attr(nfqaCfgParams, params), attr(nfqaCfgQueueMax, maxLen)} {
		if err := q.ask(q.message(nfqnlMsgConfig, unix.NLM_F_ACK, a)); err != nil {
			return fmt.Errorf("netfilter queue %d: %w", q.num, err)
		}
	}
	return nil
}

// ask sends m and waits for the kernel's acknowledgement.
func (q *packetQueue) ask(m []byte) error {
	if err := unix.Sendto(q.fd, m, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return err
	}
	buf := make([]byte, 8192)
	n, _, err := unix.Recvfrom(q.fd, buf, 0)
	if err != nil {
		return fmt.Errorf("no answer from the kernel: %w", err)
	}
	msgs, err := syscall.ParseNetlinkMessage(buf[:n])
	if err != nil {
		return err
	}
	for _, msg := range msgs {
		if msg.Header.Type == unix.NLMSG_ERROR && len(msg.Data) >= 4 {
			if code := int32(binary.NativeEndian.Uint32(msg.Data)); code != 0 {
				return unix.Errno(-code)
			}
		}
	}
	return nil
}

// receive reads queued packets and holds them (or drops them) until Close.
func (q *packetQueue) receive() {
	defer q.wg.Done()
	defer close(q.held)
	buf := make([]byte, 1<<16)
	for !q.closed.Load() {
		n, _, err := unix.Recvfrom(q.fd, buf, 0)
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) || errors.Is(err, unix.ENOBUFS) {
			// A timeout (to look at closed again), or a queue that overflowed: the
			// kernel dropped what did not fit, as a full link would.
			continue
		}
		if err != nil {
			q.fail(err)
			return
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			q.fail(err)
			return
		}
		now := time.Now()
		for _, msg := range msgs {
			if msg.Header.Type != nfnlSubsysQueue<<8|nfqnlMsgPacket || len(msg.Data) < nfgenHeaderLen {
				continue
			}
			id, ok := packetID(msg.Data[nfgenHeaderLen:])
			if !ok {
				continue
			}
			q.packets.Add(1)
			if q.loss > 0 && rand.Float64() < q.loss {
				q.dropped.Add(1)
				q.verdict(id, nfDrop)
				continue
			}
			n := q.holding.Add(1)
			for m := q.most.Load(); n > m && !q.most.CompareAndSwap(m, n); m = q.most.Load() {
			}
			q.held <- heldPacket{id: id, due: now.Add(q.delay)}
		}
	}
}

// packetID finds NFQA_PACKET_HDR among attrs and returns its packet id.
func packetID(attrs []byte) (uint32, bool) {
	for len(attrs) >= unix.SizeofNlAttr {
		n := int(binary.NativeEndian.Uint16(attrs[0:]))
		typ := binary.NativeEndian.Uint16(attrs[2:]) & nlaTypeMask
		if n < unix.SizeofNlAttr || n > len(attrs) {
			return 0, false
		}
		if typ == nfqaPacketHdr && n >= unix.SizeofNlAttr+4 {
			return binary.BigEndian.Uint32(attrs[unix.SizeofNlAttr:]), true
		}
		attrs = attrs[min((n+3)&^3, len(attrs)):]
	}
	return 0, false
}

// release lets each held packet go when it is due, in the order they came: every
// packet waits the same, so the order is the order they are due.
func (q *packetQueue) release() {
	defer q.wg.Done()
	for p := range q.held {
		if d := time.Until(p.due); d > 0 && !q.closed.Load() {
			time.Sleep(d)
		}
		q.verdict(p.id, nfAccept)
		q.holding.Add(-1)
		late := time.Since(p.due)
		q.lateMu.Lock()
		q.late = append(q.late, late)
		q.lateMu.Unlock()
	}
}

// MostHeld is the most packets the queue held at once: a TCP sender's window in
// flight, when the queue is the only delay on the way.
func (q *packetQueue) MostHeld() int64 { return q.most.Load() }

// Lateness is how late the packets were let go after their delay, at the median, at
// the 99th percentile and at most: what the queue added to the delay asked for.
func (q *packetQueue) Lateness() (median, p99, most time.Duration) {
	q.lateMu.Lock()
	defer q.lateMu.Unlock()
	return latenessOf(q.late)
}

func latenessOf(late []time.Duration) (median, p99, most time.Duration) {
	if len(late) == 0 {
		return 0, 0, 0
	}
	s := slices.Clone(late)
	slices.Sort(s)
	return s[len(s)/2], s[len(s)*99/100], s[len(s)-1]
}

func (q *packetQueue) verdict(id uint32, v uint32) {
	hdr := binary.BigEndian.AppendUint32(nil, v)
	hdr = binary.BigEndian.AppendUint32(hdr, id)
	if err := unix.Sendto(q.fd, q.message(nfqnlMsgVerdict, 0, attr(nfqaVerdictHdr, hdr)), 0,
		&unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil && !q.closed.Load() {
		q.fail(err)
	}
}

func (q *packetQueue) fail(err error) {
	q.err.CompareAndSwap(nil, &err)
}

// Err is what stopped the queue early, nil when nothing did.
func (q *packetQueue) Err() error {
	if p := q.err.Load(); p != nil {
		return *p
	}
	return nil
}

// Close stops serving: packets still held are let go, then the socket closes (the
// kernel forgets the queue; with --queue-bypass, later packets pass untouched).
func (q *packetQueue) Close() {
	q.closed.Store(true)
	q.wg.Wait()
	unix.Close(q.fd)
}

// slowLab is the slow network on every host of a lab: a served queue and the rule
// that feeds it, per host.
type slowLab struct {
	queues []*packetQueue
	undo   [][]string // the commands that remove the rules
}

// startSlowLab holds every packet a lab host sends to this machine for delay, and
// drops loss of them (0.05 for 5%).
//
// The packets are held where this machine receives them (the INPUT chain of its own
// network namespace), not where the host sends them: a packet is still counted
// against its sending socket until the interface has sent it, and TCP lets a socket
// have only about a millisecond of its pacing rate there (TCP small queues). Held in
// the sender's OUTPUT chain, a web host's 40 KB answer went out 2-4 packets per
// delay, 15-20 ms per KB at 80 ms, where a link (or netem, which lets go of the
// socket before the delay) carries it in 2-3 round trips. By the time a packet is
// received (ip_rcv) it belongs to no socket. Only what the lab hosts send to this
// machine is slowed, which is all a re-check's traffic; what they send each other is
// not.
func startSlowLab(ctx context.Context, l *lab.Lab, delay time.Duration, loss float64) (s *slowLab, err error) {
	s = &slowLab{}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	for i, h := range l.Hosts {
		num := uint16(4200 + i)
		q, err := openPacketQueue("/proc/self/ns/net", num, delay, loss)
		if err != nil {
			return nil, fmt.Errorf("bench: slow network for %s: %w", h.Name, err)
		}
		s.queues = append(s.queues, q)
		rule := []string{"INPUT", "-s", h.Address + "/32", "-j", "NFQUEUE", "--queue-num", strconv.Itoa(int(num)), "--queue-bypass"}
		// A rule a killed bench left behind goes first (-D removes one copy a time).
		for range 10 {
			if _, err := execOutput(ctx, "iptables", append([]string{"-w", "-D"}, rule...)...); err != nil {
				break
			}
		}
		if out, err := execOutput(ctx, "iptables", append([]string{"-w", "-I"}, rule...)...); err != nil {
			return nil, fmt.Errorf("bench: slow network for %s: iptables: %v: %s", h.Name, err, out)
		}
		s.undo = append(s.undo, append([]string{"-w", "-D"}, rule...))
	}
	return s, nil
}

// Counts are the packets the queues saw and dropped so far.
func (s *slowLab) Counts() (packets, dropped int64) {
	for _, q := range s.queues {
		packets += q.packets.Load()
		dropped += q.dropped.Load()
	}
	return packets, dropped
}

// MostHeld is the most packets one queue (one host's) held at once.
func (s *slowLab) MostHeld() (most int64) {
	for _, q := range s.queues {
		most = max(most, q.MostHeld())
	}
	return most
}

// Lateness is how late the packets of every queue were let go (packetQueue.Lateness).
func (s *slowLab) Lateness() (median, p99, most time.Duration) {
	var all []time.Duration
	for _, q := range s.queues {
		q.lateMu.Lock()
		all = append(all, q.late...)
		q.lateMu.Unlock()
	}
	return latenessOf(all)
}

// Close removes the rules, then stops the queues; it returns what failed, a queue
// that stopped early included.
func (s *slowLab) Close() error {
	var errs []error
	for _, args := range s.undo {
		if out, err := execOutput(context.Background(), "iptables", args...); err != nil {
			errs = append(errs, fmt.Errorf("bench: remove the slow network's rule: %v: %s", err, out))
		}
	}
	s.undo = nil
	for _, q := range s.queues {
		q.Close()
		if err := q.Err(); err != nil {
			errs = append(errs, fmt.Errorf("bench: slow network queue %d: %w", q.num, err))
		}
	}
	s.queues = nil
	return errors.Join(errs...)
}
