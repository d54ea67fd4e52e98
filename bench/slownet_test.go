package bench_test

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cauldron-go/cauldron/bench"
)

// The slow network's tests run a TCP exchange between two sockets of a throwaway
// network namespace, over its loopback, whose every packet goes through the queue:
// this test binary, started again inside the namespace, is both ends.
const exchangeEnv = "CAULDRON_SLOWNET_EXCHANGE"

func init() {
	if spec := os.Getenv(exchangeEnv); spec != "" {
		os.Exit(exchange(spec))
	}
}

// exchange runs inside the namespace: "rtt N" prints N ping-pong times in
// microseconds; "bulk N" echoes N random bytes and checks them. Both print TCP's
// retransmitted segments of the namespace as the last line.
func exchange(spec string) int {
	kind, n, _ := strings.Cut(spec, " ")
	count, _ := strconv.Atoi(n)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return 1
	}
	go func() {
		c, err := ln.Accept()
		if err == nil {
			io.Copy(c, c)
			c.Close()
		}
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		fmt.Println(err)
		return 1
	}
	defer c.Close()
	switch kind {
	case "rtt":
		b := []byte{1}
		for range count {
			start := time.Now()
			if _, err := c.Write(b); err != nil {
				fmt.Println(err)
				return 1
			}
			if _, err := io.ReadFull(c, b); err != nil {
				fmt.Println(err)
				return 1
			}
			fmt.Println(time.Since(start).Microseconds())
		}
	case "bulk":
		out := make([]byte, count)
		rand.Read(out)
		back := make(chan []byte, 1)
		go func() {
			in := make([]byte, count)
			_, err := io.ReadFull(c, in)
			if err != nil {
				fmt.Println(err)
			}
			back <- in
		}()
		if _, err := c.Write(out); err != nil {
			fmt.Println(err)
			return 1
		}
		if !bytes.Equal(<-back, out) {
			fmt.Println("the echo differs")
			return 1
		}
	}
	snmp, _ := os.ReadFile("/proc/net/snmp")
	fmt.Println("retrans", retransSegs(string(snmp)))
	return 0
}

// retransSegs reads Tcp: RetransSegs from /proc/net/snmp.
func retransSegs(snmp string) string {
	var names []string
	for _, line := range strings.Split(snmp, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != "Tcp:" {
			continue
		}
		if names == nil {
			names = f
			continue
		}
		if i := slices.Index(names, "RetransSegs"); i > 0 && i < len(f) {
			return f[i]
		}
	}
	return "?"
}

// throughQueue makes a namespace whose every packet goes through a queue served with
// delay and loss where the loopback delivers it (as the bench's rule takes a lab
// host's packets where the controller receives them), runs spec in it, and returns
// the lines it printed and the queue's counts.
func throughQueue(t *testing.T, delay time.Duration, loss float64, spec string) (lines []string, packets, dropped int64) {
	t.Helper()
	lines, packets, dropped, _ = throughQueueOf(t, delay, loss, 0, spec)
	return lines, packets, dropped
}

// throughQueueOf is throughQueue that also returns the queue; a loopback MTU other
// than 0 replaces the loopback's own (64 KB).
func throughQueueOf(t *testing.T, delay time.Duration, loss float64, mtu int, spec string) (lines []string, packets, dropped int64, _ *bench.PacketQueue) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: a network namespace and iptables")
	}
	b := make([]byte, 4)
	rand.Read(b)
	ns := "cauldron-slownet-" + hex.EncodeToString(b)
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	run("ip", "netns", "add", ns)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	run("ip", "-n", ns, "link", "set", "lo", "up")
	if mtu != 0 {
		run("ip", "-n", ns, "link", "set", "lo", "mtu", strconv.Itoa(mtu))
	}
	q, err := bench.OpenPacketQueue("/run/netns/"+ns, 7, delay, loss)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	run("ip", "netns", "exec", ns, "iptables", "-w", "-I", "INPUT", "-i", "lo", "-j", "NFQUEUE", "--queue-num", "7", "--queue-bypass")
	cmd := exec.Command("ip", "netns", "exec", ns, os.Args[0])
	cmd.Env = append(os.Environ(), exchangeEnv+"="+spec)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the exchange in the namespace: %v: %s", err, out)
	}
	packets, dropped = q.Counts()
	if err := q.Err(); err != nil {
		t.Errorf("the queue stopped: %v", err)
	}
	return strings.Split(strings.TrimSpace(string(out)), "\n"), packets, dropped, q
}

func TestTheSlowNetworkHoldsEveryPacketForItsDelay(t *testing.T) {
	// Both ends are on one loopback: a ping-pong's two packets each wait 40 ms.
	lines, packets, _, q := throughQueueOf(t, 40*time.Millisecond, 0, 0, "rtt 5")
	var rtts []time.Duration
	for _, l := range lines[:len(lines)-1] {
		us, err := strconv.Atoi(l)
		if err != nil {
			t.Fatalf("unexpected output %q", lines)
		}
		rtts = append(rtts, time.Duration(us)*time.Microsecond)
	}
	slices.Sort(rtts)
	if len(rtts) != 5 || rtts[0] < 80*time.Millisecond {
		t.Errorf("round trips %v: want 5, each at least 80 ms", rtts)
	}
	if packets < 10 {
		t.Errorf("the queue saw %d packets, want at least the 10 of the ping-pongs", packets)
	}
	median, p99, most := q.Lateness()
	// The median, not the most: on a loaded machine (verify runs labs beside it) one
	// packet's goroutine can wait for a CPU longer than the delay itself.
	if median < 0 || most < median || median > 40*time.Millisecond {
		t.Errorf("lateness: median %s, 99th percentile %s, most %s: want 0 <= median <= most, the median less than the delay", median, p99, most)
	}
	t.Logf("round trips %v through %d packets, let go %s late at the median, %s at most", rtts, packets, median, most)
}

func TestASendersWindowGrowsThroughTheSlowNetworkAsOverALink(t *testing.T) {
	// On a link, a sent packet leaves its socket's account when the interface has
	// sent it, before the link's delay; netem lets it go likewise (skb_orphan_partial
	// in netem_enqueue). A packet held while its socket still counts it holds TCP to
	// its small-queue limit (about 1 ms of its pacing rate, two packets at least): 2-4
	// packets per delay, 15-20 ms per KB at 80 ms, whatever the window. Held where it
	// is received (ip_rcv has let go of its socket), TCP's window grows as over a link
	// of that round trip: 1 MB in 1500-byte packets is about 700 of them each way, and
	// slow start has more than 100 in flight within 5 round trips.
	_, packets, _, q := throughQueueOf(t, 40*time.Millisecond, 0, 1500, "bulk 1000000")
	if most := q.MostHeld(); most < 100 {
		t.Errorf("the queue held at most %d packets at once (of %d): TCP's window did not grow", most, packets)
	}
	t.Logf("held at most %d packets at once, of %d", q.MostHeld(), packets)
}

func TestTheSlowNetworkLosesPacketsAndTCPRetransmitsThem(t *testing.T) {
	lines, packets, dropped := throughQueue(t, time.Millisecond, 0.05, "bulk 20000000")
	last := lines[len(lines)-1]
	retrans, err := strconv.Atoi(strings.TrimPrefix(last, "retrans "))
	if err != nil {
		t.Fatalf("unexpected output %q", lines)
	}
	share := float64(dropped) / float64(packets)
	if packets < 100 || share < 0.02 || share > 0.1 {
		t.Errorf("dropped %d of %d packets (%.1f%%), want about 5%%", dropped, packets, 100*share)
	}
	if retrans == 0 {
		t.Errorf("TCP retransmitted nothing although %d packets were dropped", dropped)
	}
	t.Logf("dropped %d of %d packets; TCP retransmitted %d segments; the 20 MB came back intact", dropped, packets, retrans)
}
