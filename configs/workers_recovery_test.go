package configs_test

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cauldron-go/cauldron/configs"
)

// ajpNode is a fake Tomcat AJP connector: it answers CPing with CPong, and each
// forwarded request with a 200 whose body is its name, unless it fails: a node that
// stalls takes the request and never answers (a Tomcat that hangs under load); a node
// that dies takes it and closes the connection (what the kernel does to a JVM's sockets
// at kill -9); a node that dies answering sends the answer's headers first, then closes
// that connection, every other one and its listener: a Tomcat killed with kill -9 in
// the middle of its answer, which refuses every connection after. A frozen node (freeze)
// reads what comes and never answers, and its listener still takes connections: a host
// stopped with docker pause, whose kernel still completes handshakes.
type ajpNode struct {
	name   string
	fail   string // "", "stall", "die" or "die answering"
	delay  time.Duration
	ln     net.Listener
	mu     sync.Mutex
	served int
	conns  []net.Conn
	frozen chan struct{}
	closed chan struct{}
}

// freeze makes the node stop answering, as docker pause does to its host.
func (n *ajpNode) freeze() { close(n.frozen) }

// waitIfFrozen blocks for good once the node is frozen.
func (n *ajpNode) waitIfFrozen() {
	select {
	case <-n.frozen:
		<-n.closed
	default:
	}
}

func newAJPNode(t *testing.T, name, fail string) *ajpNode {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	n := &ajpNode{name: name, fail: fail, ln: ln, frozen: make(chan struct{}), closed: make(chan struct{})}
	t.Cleanup(func() {
		close(n.closed)
		ln.Close()
		n.mu.Lock()
		defer n.mu.Unlock()
		for _, c := range n.conns {
			c.Close()
		}
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n.mu.Lock()
			n.conns = append(n.conns, c)
			n.mu.Unlock()
			go n.serve(c)
		}
	}()
	return n
}

func (n *ajpNode) port() int { return n.ln.Addr().(*net.TCPAddr).Port }

func (n *ajpNode) requests() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.served
}

// serve reads the web server's packets (0x12 0x34, length, payload) and answers.
func (n *ajpNode) serve(c net.Conn) {
	r := bufio.NewReader(c)
	for {
		var head [4]byte
		if _, err := io.ReadFull(r, head[:]); err != nil || head[0] != 0x12 || head[1] != 0x34 {
			return
		}
		payload := make([]byte, binary.BigEndian.Uint16(head[2:]))
		if _, err := io.ReadFull(r, payload); err != nil || len(payload) == 0 {
			return
		}
		n.waitIfFrozen()
		switch payload[0] {
		case 10: // CPing
			c.Write(ajpPacket([]byte{9})) // CPong
		case 2: // forward request (a GET: no body follows)
			n.mu.Lock()
			n.served++
			n.mu.Unlock()
			switch n.fail {
			case "stall":
				continue // holds the request, never answers
			case "die":
				c.Close()
				return
			}
			time.Sleep(n.delay)
			n.waitIfFrozen()
			body := []byte(n.name)
			headers := []byte{4, 0, 200}
			headers = append(headers, ajpString("OK")...)
			headers = append(headers, 0, 1, 0xA0, 0x03) // one header: Content-Length (code 0xA003)
			headers = append(headers, ajpString(fmt.Sprint(len(body)))...)
			if n.fail == "die answering" {
				c.Write(ajpPacket(headers))
				n.ln.Close()
				n.mu.Lock()
				for _, open := range n.conns {
					open.Close()
				}
				n.mu.Unlock()
				return
			}
			chunk := append([]byte{3, 0, byte(len(body))}, body...)
			chunk = append(chunk, 0)
			c.Write(append(append(ajpPacket(headers), ajpPacket(chunk)...), ajpPacket([]byte{5, 1})...))
		}
	}
}

// ajpPacket frames a container's packet: 'A' 'B', length, payload.
func ajpPacket(payload []byte) []byte {
	return append([]byte{'A', 'B', byte(len(payload) >> 8), byte(len(payload))}, payload...)
}

// ajpString is an AJP string: length, bytes, a 0 byte.
func ajpString(s string) []byte {
	return append(append([]byte{byte(len(s) >> 8), byte(len(s))}, s...), 0)
}

// runApacheModJk starts a real Apache with mod_jk in front of workers, every path mounted
// on the balancer lb, and returns its URL and mod_jk's log file. Each line of extra is
// added to its configuration.
func runApacheModJk(t *testing.T, workers []byte, lb string, extra ...string) (url, jkLog string) {
	t.Helper()
	const modules = "/usr/lib/apache2/modules"
	apache, err := exec.LookPath("apache2")
	if err != nil {
		apache = "/usr/sbin/apache2"
	}
	for _, f := range []string{apache, modules + "/mod_jk.so", modules + "/mod_mpm_event.so", modules + "/mod_authz_core.so"} {
		if _, err := os.Stat(f); err != nil {
			t.Skipf("needs Apache with mod_jk (apt-get install apache2 libapache2-mod-jk): %v", err)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	// Not t.TempDir: Apache's children (user daemon) write mod_jk's log and shm there.
	dir, err := os.MkdirTemp("", "cauldron-modjk-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "workers.properties"), workers, 0o644); err != nil {
		t.Fatal(err)
	}
	jkLog = filepath.Join(dir, "mod_jk.log")
	conf := fmt.Sprintf(`ServerRoot %[1]s
ServerName localhost
Listen 127.0.0.1:%[2]d
PidFile %[1]s/httpd.pid
DefaultRuntimeDir %[1]s
Mutex file:%[1]s default
ErrorLog %[1]s/error.log
LogLevel warn
User daemon
Group daemon
LoadModule mpm_event_module %[3]s/mod_mpm_event.so
LoadModule authz_core_module %[3]s/mod_authz_core.so
LoadModule jk_module %[3]s/mod_jk.so
JkWorkersFile %[1]s/workers.properties
JkLogFile %[4]s
JkLogLevel info
JkShmFile %[1]s/jk.shm
JkMount /* %[5]s
%[6]s
`, dir, port, modules, jkLog, lb, strings.Join(extra, "\n"))
	confFile := filepath.Join(dir, "httpd.conf")
	if err := os.WriteFile(confFile, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(apache, "-f", confFile, "-DFOREGROUND")
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	})
	url = fmt.Sprintf("http://127.0.0.1:%d", port)
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err == nil {
			c.Close()
			return url, jkLog
		}
		select {
		case err := <-exited:
			errLog, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Fatalf("apache exited: %v\n%s\n%s", err, out.String(), errLog)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("apache did not listen on %d: %s", port, out.String())
		}
	}
}

// balancerOver returns the lab's workers with only the first app's balancer, its
// members pointed at the stand-in nodes, in order, and that balancer.
func balancerOver(nodes ...*ajpNode) (*configs.Workers, configs.Balancer) {
	w := configs.NewWorkers(cluster(len(nodes)))
	w.Balancers = w.Balancers[:1]
	for i, n := range nodes {
		m := &w.Balancers[0].Members[i]
		m.Host, m.Port = "127.0.0.1", n.port()
	}
	return w, w.Balancers[0]
}

// TestAGetATomcatTookAndNeverAnsweredGoesToTheOtherNode: mod_jk 1.2.48 makes a request
// that failed after Tomcat took it recoverable again for HEAD when bit 8 of
// recovery_options is set, "else if" bit 16 for GET (jk_ajp_common.c, ajp_get_reply):
// with both bits (27) a GET is never recovered, though the documentation says each bit
// works "even if bits 1 or 2 are set". A Tomcat that stalls past reply_timeout under load
// (CI: web2 for ~2 s) then gives the user a 504; a Tomcat killed with kill -9 closes its
// connections at once (the kernel does), and gives a 502.
func TestAGetATomcatTookAndNeverAnsweredGoesToTheOtherNode(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real Apache with mod_jk")
	}
	for _, fail := range []string{"stall", "die"} {
		t.Run("the first node "+fail+"s", func(t *testing.T) {
			failing := newAJPNode(t, "node1", fail)
			healthy := newAJPNode(t, "node2", "")
			w, lb := balancerOver(failing, healthy)
			for i := range w.Balancers[0].Members {
				w.Balancers[0].Members[i].ReplyTimeoutMS = 300 // the test's stall, shorter than the lab's
			}
			b, err := w.Render()
			if err != nil {
				t.Fatal(err)
			}
			url, jkLog := runApacheModJk(t, b, lb.Name)

			// The session's route sends the GET to the failing node first.
			req, _ := http.NewRequest(http.MethodGet, url+"/session.json", nil)
			req.AddCookie(&http.Cookie{Name: "JSESSIONID", Value: "ABC." + lb.Members[0].Name})
			resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || string(body) != "node2" {
				log, _ := os.ReadFile(jkLog)
				t.Errorf("a GET the first node took and never answered: status %d, want 200 from node2 (recovery_options %d)\nmod_jk:\n%s",
					resp.StatusCode, lb.Members[0].RecoveryOptions, log)
			}
			if failing.requests() != 1 || healthy.requests() != 1 {
				t.Errorf("the failing node took %d requests and the healthy one %d, want 1 and 1", failing.requests(), healthy.requests())
			}
		})
	}
}
