package configs

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
)

// Workers is mod_jk 1.2.48's workers.properties: one load-balancer worker per app, each
// over one ajp13 worker per node. worker.list names the load balancers.
type Workers struct {
	Balancers []Balancer
	// MaintainSeconds is how often mod_jk does its upkeep (worker.maintain), which is
	// when a member in error is tried again after its balancer's RecoverTimeSeconds; 0
	// leaves mod_jk's 60 s.
	MaintainSeconds int
	// StatusWorker, when set, names a status worker (type=status), the run-time control
	// of the balancers that a drained restart uses to take a node out and put it back.
	// Apache must mount it on a loopback-only listener (ApacheSite.Status): whoever
	// reaches it can stop every node.
	StatusWorker string
}

// DefaultJkStatusWorker is the status worker's name.
const DefaultJkStatusWorker = "jkstatus"

// Balancer is an lb worker.
type Balancer struct {
	// Name is what JkMount names: the app's name.
	Name          string
	StickySession bool
	// RecoverTimeSeconds is how long a member in error rests before it is tried again
	// (recover_time); 0 leaves mod_jk's 60 s, during which a node that came back gets no
	// new sessions.
	RecoverTimeSeconds int
	// Method is how the balancer counts a member's load (method): "S" counts the new
	// sessions it was given, so new sessions alternate over the members whatever the
	// sticky traffic of the old ones (after a restart, the node that held every session
	// would otherwise be skipped); empty leaves mod_jk's "R" (requests).
	Method  string
	Members []AJPWorker
}

// AJPWorker is an ajp13 worker: one Tomcat AJP connector. Its name must equal the
// Engine's jvmRoute, which is how mod_jk keeps a session on its node.
type AJPWorker struct {
	Name     string
	Host     string
	Port     int
	Secret   string
	LBFactor int
	// ConnectTimeoutMS bounds a connect to the node (socket_connect_timeout) and the
	// CPing that follows it (ping_mode C, ping_timeout): a node whose host vanished is
	// then given up on in time for the balancer to use another, instead of after the
	// kernel's connect timeout, which outlasts HAProxy's health checks. 0 leaves mod_jk's
	// defaults.
	ConnectTimeoutMS int
	// PingTimeoutMS bounds a CPing before each request on a pooled connection (ping_mode
	// P): a node that hung (a frozen host still accepts connections) is then left for
	// another member before the request goes to it. 0 leaves requests unpinged.
	PingTimeoutMS int
	// ConnectPingTimeoutMS, when set, bounds the CPing on a new connection
	// (connect_timeout) instead of PingTimeoutMS. A failed CPing on a pooled connection
	// only closes it and tries another one; a failed CPing on a new connection puts the
	// node in error, and its sessions go to another node. 0 leaves PingTimeoutMS.
	ConnectPingTimeoutMS int
	// ReplyTimeoutMS bounds the wait for each part of a node's answer (reply_timeout);
	// 0 waits for ever.
	ReplyTimeoutMS int
	// Retries is how many times mod_jk tries this node before its balancer turns to
	// another (retries; 0 leaves mod_jk's 2): each try on a node that dropped off costs
	// a connect or ping timeout, and two of them outlast HAProxy's check of the web host.
	Retries int
	// RecoveryOptions is mod_jk's recovery_options bit field: 1|2 never sends a request to
	// another member once a node may have seen it (it may have changed something), and
	// 8 or 16 makes an exception for HEAD or GET (not both: DefaultAJPRecoveryOptions). 0 leaves
	// mod_jk's full recovery, which repeats a POST too.
	RecoveryOptions int
	// IdlePoolSeconds closes a pooled connection left idle that long, at mod_jk's next
	// upkeep (connection_pool_timeout, with connection_pool_minsize 0: none is kept for
	// its own sake); 0 keeps every connection a burst opened for good. A node that hangs
	// costs a request one CPing per idle pooled connection (DefaultAJPPingTimeoutMS), so
	// fewer of them bound that cost.
	IdlePoolSeconds int
}

// DefaultAJPIdlePoolSeconds is how long an idle pooled connection to a node is kept.
// mod_jk takes the lowest free slot for each request, so under steady load the same few
// connections serve and the ones a burst opened stay idle; with this they go within
// about this + worker.maintain, and a request that finds the node hung tries the few in
// use instead of every one the burst left (eight pooled connections: 3.3 s, against 1.9
// s for one; TestARequestForAFrozenNodesSessionIsAnsweredByTheOtherNodeBeforeHAProxyGivesUp).
// A connection closed too early only costs the next request a connect and its CPing.
const DefaultAJPIdlePoolSeconds = 1

// DefaultAJPConnectTimeoutMS is how long mod_jk waits for a node to accept a connection:
// below HAProxy's check timeout, or the check through a web host whose balancer first
// tries a node that dropped off the network fails too, and HAProxy takes the healthy
// web host out with the other (seen on the lab: 2 s here took both out).
const DefaultAJPConnectTimeoutMS = 500

// NewWorkers returns the workers of c: for each app a balancer over every node.
func NewWorkers(c Cluster) *Workers {
	// A node that came back takes new sessions again within maintain + recover_time
	// after the last request that failed on it (about 5 s), not after mod_jk's 60 s +
	// 60 s. While a node is away, each recovery costs one request a connect or ping
	// timeout (DefaultAJPConnectTimeoutMS) before it goes to another node; with 5 s + 5 s
	// the balancer on a host that had been cut off still sent every new session to the
	// other node 8-13 s after the host came back (25/75 spreads on the lab).
	w := &Workers{MaintainSeconds: 2}
	for _, a := range c.Apps {
		b := Balancer{Name: a.Name, StickySession: true, RecoverTimeSeconds: 3, Method: "S"}
		for _, n := range c.Nodes {
			b.Members = append(b.Members, AJPWorker{
				Name: a.JvmRoute(n), Host: n.Address, Port: a.AJPPort, Secret: c.AJPSecret, LBFactor: 1,
				ConnectTimeoutMS: DefaultAJPConnectTimeoutMS, ConnectPingTimeoutMS: DefaultAJPConnectPingTimeoutMS,
				PingTimeoutMS: DefaultAJPPingTimeoutMS, ReplyTimeoutMS: DefaultAJPReplyTimeoutMS,
				RecoveryOptions: DefaultAJPRecoveryOptions, Retries: 1, IdlePoolSeconds: DefaultAJPIdlePoolSeconds,
			})
		}
		w.Balancers = append(w.Balancers, b)
	}
	w.StatusWorker = DefaultJkStatusWorker
	return w
}

// DefaultAJPRecoveryOptions is recovery_options 1 (no recovery once Tomcat got the
// request) + 2 (nor once it sent the headers) + 16 (but always for GET): a GET that a
// Tomcat took and never answered (killed with kill -9, or stalled past reply_timeout) is
// sent to the other member instead of failing (a 502 or 504 that HAProxy does not retry:
// the web host answered), while a POST is never sent twice. Not 8 (always for HEAD) as
// well: mod_jk 1.2.48 tests bit 8 and only "else" bit 16 (jk_ajp_common.c,
// ajp_get_reply), so with both a GET is never recovered, whatever its documentation says
// (TestAGetATomcatTookAndNeverAnsweredGoesToTheOtherNode: 504 with 27). A HEAD that
// Tomcat took is then not recovered; a HEAD or GET Tomcat never got always is.
const DefaultAJPRecoveryOptions = 1 | 2 | 16

// DefaultAJPPingTimeoutMS is how long mod_jk waits for a node's CPong on a pooled
// connection before a request. A timeout there costs little: mod_jk closes that
// connection and tries another, then a new one (DefaultAJPConnectPingTimeoutMS), and
// only that one's failure puts the node in error. It is short because a node that hangs
// (its host frozen) costs a request for one of its sessions, on a healthy web host, this
// plus mod_jk's 100 ms lingering close for every idle pooled connection to it, then the
// new connection's CPing, before the request goes to another node; all of it must end
// inside HAProxyTimeoutServer, or HAProxy answers 504 for the healthy web host (CI's
// ci60). With 500 ms and 2000 ms, four pooled connections took 4.5 s (a real Apache,
// TestARequestForAFrozenNodesSessionIsAnsweredByTheOtherNodeBeforeHAProxyGivesUp); with
// 100 ms and DefaultAJPConnectPingTimeoutMS, 2.5 s.
const DefaultAJPPingTimeoutMS = 100

// DefaultAJPConnectPingTimeoutMS is how long mod_jk waits for a node's CPong on a new
// connection; its failure puts the node in error and sends the node's sessions to
// another node, which with asynchronous replication may not have a session's last
// change yet, or the session at all if it began a moment before (a lost session, with
// no fault at all). A Tomcat that just started answers its first CPongs slowly on a
// loaded machine: on the lab (3 web nodes, 16 users, CPU load average 17-28) the CPong
// on a new connection took up to 655 ms, 561 ms and 1,255 ms in three restarts (p90
// 259-443 ms), and the 500 ms this used to share with DefaultAJPPingTimeoutMS put a
// just-restarted node in error on every web host under the load check's no-fault
// load. It was 2000 ms until a hung node's cost (DefaultAJPPingTimeoutMS) was measured:
// 1600 ms keeps that inside HAProxyTimeoutServer and still waits out the slowest first
// CPong seen.
const DefaultAJPConnectPingTimeoutMS = 1600

// DefaultAJPReplyTimeoutMS is how long mod_jk waits for a node's answer: below
// HAProxyTimeoutServer, so mod_jk gives up on a hung node and sends a GET or HEAD to
// another (DefaultAJPRecoveryOptions) before HAProxy gives up on the web host.
const DefaultAJPReplyTimeoutMS = 2000

// Validate reports every mistake in w.
func (w *Workers) Validate() error {
	var errs []error
	if w.MaintainSeconds < 0 {
		errs = append(errs, fmt.Errorf("workers.properties: maintain %d must not be negative", w.MaintainSeconds))
	}
	if len(w.Balancers) == 0 {
		errs = append(errs, errors.New("workers.properties: no load-balancer worker"))
	}
	names := map[string]bool{}
	if w.StatusWorker != "" {
		if !isName(w.StatusWorker) {
			errs = append(errs, fmt.Errorf("workers.properties: status worker %q: name must be letters, digits, '-' or '_'", w.StatusWorker))
		}
		names[w.StatusWorker] = true
	}
	for _, b := range w.Balancers {
		at := fmt.Sprintf("workers.properties: worker %q", b.Name)
		if !isName(b.Name) {
			errs = append(errs, fmt.Errorf("%s: name must be letters, digits, '-' or '_'", at))
		}
		errs = appendIfSeen(errs, names, b.Name, at+": name used twice")
		if len(b.Members) == 0 {
			errs = append(errs, fmt.Errorf("%s: balances no worker", at))
		}
		if b.RecoverTimeSeconds < 0 {
			errs = append(errs, fmt.Errorf("%s: recover_time %d must not be negative", at, b.RecoverTimeSeconds))
		}
		switch b.Method {
		case "", "R", "S", "B", "N":
		default:
			errs = append(errs, fmt.Errorf("%s: method %q is not R, S, B or N", at, b.Method))
		}
		for _, m := range b.Members {
			mat := fmt.Sprintf("workers.properties: worker %q", m.Name)
			if !isName(m.Name) {
				errs = append(errs, fmt.Errorf("%s: name must be letters, digits, '-' or '_'", mat))
			}
			errs = appendIfSeen(errs, names, m.Name, mat+": name used twice")
			if !isHost(m.Host) {
				errs = append(errs, fmt.Errorf("%s: host %q is not an IP address or host name", mat, m.Host))
			}
			if err := checkPort(mat+": port", m.Port); err != nil {
				errs = append(errs, err)
			}
			if !isSecret(m.Secret) {
				errs = append(errs, fmt.Errorf("%s: the secret is empty or holds whitespace, quotes, '\\', '<', '>', '&' or control characters", mat))
			}
			if m.ConnectTimeoutMS < 0 || m.PingTimeoutMS < 0 || m.ConnectPingTimeoutMS < 0 || m.ReplyTimeoutMS < 0 {
				errs = append(errs, fmt.Errorf("%s: connect %d ms, ping %d ms, connect ping %d ms and reply %d ms timeouts must not be negative", mat, m.ConnectTimeoutMS, m.PingTimeoutMS, m.ConnectPingTimeoutMS, m.ReplyTimeoutMS))
			}
			if m.ConnectPingTimeoutMS > 0 && m.ConnectTimeoutMS == 0 {
				errs = append(errs, fmt.Errorf("%s: a connect ping timeout (%d ms) needs a connect timeout: without one mod_jk sends no CPing on a new connection", mat, m.ConnectPingTimeoutMS))
			}
			if m.IdlePoolSeconds < 0 {
				errs = append(errs, fmt.Errorf("%s: connection_pool_timeout %d s must not be negative", mat, m.IdlePoolSeconds))
			}
			if m.Retries < 0 {
				errs = append(errs, fmt.Errorf("%s: retries %d must not be negative", mat, m.Retries))
			}
			if m.RecoveryOptions < 0 || m.RecoveryOptions > 31 {
				errs = append(errs, fmt.Errorf("%s: recovery_options %d is not a bit field of 0 to 31", mat, m.RecoveryOptions))
			}
			if m.LBFactor < 1 {
				errs = append(errs, fmt.Errorf("%s: lbfactor %d must be 1 or more", mat, m.LBFactor))
			}
		}
	}
	return errors.Join(errs...)
}

// Render validates w and returns the file.
func (w *Workers) Render() ([]byte, error) {
	if err := w.Validate(); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.WriteString("# Generated by cauldron; changes here are overwritten.\n")
	var list []string
	for _, lb := range w.Balancers {
		list = append(list, lb.Name)
	}
	if w.StatusWorker != "" {
		list = append(list, w.StatusWorker)
	}
	fmt.Fprintf(&b, "worker.list=%s\n", strings.Join(list, ","))
	if w.StatusWorker != "" {
		fmt.Fprintf(&b, "worker.%s.type=status\n", w.StatusWorker)
	}
	if w.MaintainSeconds > 0 {
		fmt.Fprintf(&b, "worker.maintain=%d\n", w.MaintainSeconds)
	}
	for _, lb := range w.Balancers {
		var members []string
		for _, m := range lb.Members {
			b.WriteString("\n")
			fmt.Fprintf(&b, "worker.%s.type=ajp13\n", m.Name)
			fmt.Fprintf(&b, "worker.%s.host=%s\n", m.Name, m.Host)
			fmt.Fprintf(&b, "worker.%s.port=%d\n", m.Name, m.Port)
			fmt.Fprintf(&b, "worker.%s.secret=%s\n", m.Name, m.Secret)
			fmt.Fprintf(&b, "worker.%s.lbfactor=%d\n", m.Name, m.LBFactor)
			if m.ConnectTimeoutMS > 0 {
				fmt.Fprintf(&b, "worker.%s.socket_connect_timeout=%d\n", m.Name, m.ConnectTimeoutMS)
			}
			// One ping_timeout serves both pings: the one after a connect (C) and the one
			// before a request (P).
			switch {
			case m.PingTimeoutMS > 0:
				mode := "P"
				if m.ConnectTimeoutMS > 0 {
					mode = "CP"
				}
				fmt.Fprintf(&b, "worker.%s.ping_mode=%s\n", m.Name, mode)
				fmt.Fprintf(&b, "worker.%s.ping_timeout=%d\n", m.Name, m.PingTimeoutMS)
				if m.ConnectPingTimeoutMS > 0 {
					// mod_jk's connect_timeout is the CPing after a connect (not the
					// connect itself: socket_connect_timeout); set, it wins over ping_timeout.
					fmt.Fprintf(&b, "worker.%s.connect_timeout=%d\n", m.Name, m.ConnectPingTimeoutMS)
				}
			case m.ConnectTimeoutMS > 0:
				connectPing := m.ConnectTimeoutMS
				if m.ConnectPingTimeoutMS > 0 {
					connectPing = m.ConnectPingTimeoutMS
				}
				fmt.Fprintf(&b, "worker.%s.ping_mode=C\n", m.Name)
				fmt.Fprintf(&b, "worker.%s.ping_timeout=%d\n", m.Name, connectPing)
			}
			if m.ReplyTimeoutMS > 0 {
				fmt.Fprintf(&b, "worker.%s.reply_timeout=%d\n", m.Name, m.ReplyTimeoutMS)
			}
			if m.Retries > 0 {
				fmt.Fprintf(&b, "worker.%s.retries=%d\n", m.Name, m.Retries)
			}
			if m.RecoveryOptions > 0 {
				fmt.Fprintf(&b, "worker.%s.recovery_options=%d\n", m.Name, m.RecoveryOptions)
			}
			if m.IdlePoolSeconds > 0 {
				fmt.Fprintf(&b, "worker.%s.connection_pool_timeout=%d\n", m.Name, m.IdlePoolSeconds)
				fmt.Fprintf(&b, "worker.%s.connection_pool_minsize=0\n", m.Name)
			}
			members = append(members, m.Name)
		}
		b.WriteString("\n")
		fmt.Fprintf(&b, "worker.%s.type=lb\n", lb.Name)
		fmt.Fprintf(&b, "worker.%s.balance_workers=%s\n", lb.Name, strings.Join(members, ","))
		fmt.Fprintf(&b, "worker.%s.sticky_session=%t\n", lb.Name, lb.StickySession)
		if lb.RecoverTimeSeconds > 0 {
			fmt.Fprintf(&b, "worker.%s.recover_time=%d\n", lb.Name, lb.RecoverTimeSeconds)
		}
		if lb.Method != "" {
			fmt.Fprintf(&b, "worker.%s.method=%s\n", lb.Name, lb.Method)
		}
	}
	return b.Bytes(), nil
}
