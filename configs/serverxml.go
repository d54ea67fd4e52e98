package configs

import (
	"bytes"
	"crypto/sha256"
	"encoding/xml"
	"errors"
	"fmt"
	"net/netip"
	"path"
	"slices"
	"strconv"
	"strings"
)

// Tomcat class names used in server.xml.
const (
	ClassSimpleTcpCluster     = "org.apache.catalina.ha.tcp.SimpleTcpCluster"
	ClassDeltaManager         = "org.apache.catalina.ha.session.DeltaManager"
	ClassGroupChannel         = "org.apache.catalina.tribes.group.GroupChannel"
	ClassMcastService         = "org.apache.catalina.tribes.membership.McastService"
	ClassStaticMembership     = "org.apache.catalina.tribes.membership.StaticMembershipService"
	ClassStaticMember         = "org.apache.catalina.tribes.membership.StaticMember"
	ClassNioReceiver          = "org.apache.catalina.tribes.transport.nio.NioReceiver"
	ClassReplicationSender    = "org.apache.catalina.tribes.transport.ReplicationTransmitter"
	ClassPooledParallelSender = "org.apache.catalina.tribes.transport.nio.PooledParallelSender"
	ClassTcpFailureDetector   = "org.apache.catalina.tribes.group.interceptors.TcpFailureDetector"
	ClassMessageDispatch      = "org.apache.catalina.tribes.group.interceptors.MessageDispatchInterceptor"
	ClassOrderInterceptor     = "org.apache.catalina.tribes.group.interceptors.OrderInterceptor"
	ClassReplicationValve     = "org.apache.catalina.ha.tcp.ReplicationValve"
	ClassJvmRouteBinderValve  = "org.apache.catalina.ha.session.JvmRouteBinderValve"
	ClassClusterSession       = "org.apache.catalina.ha.session.ClusterSessionListener"
	ClassAccessLogValve       = "org.apache.catalina.valves.AccessLogValve"
)

// ClassFreshConnectionsSender and ClassFreshConnectionsInterceptor are cauldron's own
// Tribes classes (recipes.TribesJar compiles them into Tomcat's lib on the node):
// together they close a node's pooled connections to a member that is added back
// after it went away (see WrittenReplication).
const (
	ClassFreshConnectionsSender      = "io.cauldron.tribes.FreshConnectionsSender"
	ClassFreshConnectionsInterceptor = "io.cauldron.tribes.FreshConnectionsInterceptor"
)

// ClassResetOnDepartureInterceptor is cauldron's interceptor (in the same jar) that
// resets a node's connections to a member once the failure detector found it gone, so
// that what the node sent it in the moment it went out of reach (a host cut off) is
// dropped, not delivered when it is back (recipes/tribes/ResetOnDepartureInterceptor.java).
// It needs ClassFreshConnectionsSender and comes above the failure detector.
const ClassResetOnDepartureInterceptor = "io.cauldron.tribes.ResetOnDepartureInterceptor"

// ClassRejoinFailureDetector is cauldron's TcpFailureDetector (in the same jar): Tribes'
// own leaves a static member that stopped cleanly out of the cluster for good when its
// one read test on the way back fails, as it does for a JVM that has just started on a
// loaded host (recipes/tribes/RejoinFailureDetector.java); cauldron's tests it again at
// each heartbeat.
const ClassRejoinFailureDetector = "io.cauldron.tribes.RejoinFailureDetector"

// ClassGaplessOrderInterceptor is cauldron's OrderInterceptor (in the same jar), which
// numbers a message and hands it to the transport in one go, so that a node killed
// between two request threads' sends leaves its peer no gap to wait on
// (recipes/tribes/GaplessOrderInterceptor.java).
const ClassGaplessOrderInterceptor = "io.cauldron.tribes.GaplessOrderInterceptor"

// ClassWokenNodeValve is cauldron's valve (in the same jar) that keeps a node which was
// frozen from serving other nodes' sessions with its stale copies of them for a few
// seconds after it wakes: the first valve of every clustered Engine (see
// recipes/tribes/WokenNodeValve.java for why and how).
const ClassWokenNodeValve = "io.cauldron.tribes.WokenNodeValve"

// ClassAbandonedRequestValve is cauldron's valve (in the same jar) that refuses a
// request its balancer gave up on (after the RequestDeadlineHeader HAProxy stamped)
// instead of running it late, behind its user's back: the first valve of every
// clustered Engine (see recipes/tribes/AbandonedRequestValve.java).
const ClassAbandonedRequestValve = "io.cauldron.tribes.AbandonedRequestValve"

// StaticFilesFilter is the ReplicationValve filter: requests for these never change a
// session, so they are not worth a replication round.
const StaticFilesFilter = `.*\.gif|.*\.js|.*\.jpeg|.*\.jpg|.*\.png|.*\.htm|.*\.html|.*\.css|.*\.txt|.*\.svg|.*\.ico|.*\.woff2?`

// ServerXML is Tomcat 10.1's conf/server.xml.
type ServerXML struct {
	XMLName   xml.Name   `xml:"Server"`
	Port      int        `xml:"port,attr"`
	Shutdown  string     `xml:"shutdown,attr"`
	Listeners []Listener `xml:"Listener"`
	Services  []Service  `xml:"Service"`
}

// Listener is a Listener, ClusterListener or Interceptor: an element with a class name only.
type Listener struct {
	ClassName string `xml:"className,attr"`
	// Attrs are the element's other attributes, in order (a Transport's timeout, an
	// Interceptor's settings).
	Attrs []xml.Attr `xml:",any,attr"`
}

// Service is one Tomcat Service: its connectors and its Engine.
type Service struct {
	Name       string      `xml:"name,attr"`
	Connectors []Connector `xml:"Connector"`
	Engine     Engine      `xml:"Engine"`
}

// Connector is an HTTP or AJP connector.
type Connector struct {
	Port              int    `xml:"port,attr"`
	Protocol          string `xml:"protocol,attr"`
	Address           string `xml:"address,attr,omitempty"`
	ConnectionTimeout int    `xml:"connectionTimeout,attr,omitempty"`
	RedirectPort      int    `xml:"redirectPort,attr,omitempty"`
	Secret            string `xml:"secret,attr,omitempty"`
	SecretRequired    bool   `xml:"secretRequired,attr,omitempty"`
	// BindOnInit false opens the port only once the connector starts, after the apps
	// are deployed and the session state is received, and closes it as soon as it
	// stops (see NewServerXML); nil leaves Tomcat's true.
	BindOnInit *bool `xml:"bindOnInit,attr,omitempty"`
}

// Protocols of Connector.
const (
	ProtocolHTTP = "HTTP/1.1"
	ProtocolAJP  = "AJP/1.3"
)

// Engine is a Service's Engine.
type Engine struct {
	Name        string         `xml:"name,attr"`
	DefaultHost string         `xml:"defaultHost,attr"`
	JvmRoute    string         `xml:"jvmRoute,attr"`
	Cluster     *TomcatCluster `xml:"Cluster,omitempty"`
	// Valves run before the cluster's, which Tomcat adds to the Engine when the
	// cluster starts.
	Valves []Valve `xml:"Valve"`
	Host   Host    `xml:"Host"`
}

// Host is the Engine's one virtual host.
type Host struct {
	Name       string    `xml:"name,attr"`
	AppBase    string    `xml:"appBase,attr"`
	UnpackWARs bool      `xml:"unpackWARs,attr"`
	AutoDeploy bool      `xml:"autoDeploy,attr"`
	Valves     []Valve   `xml:"Valve"`
	Contexts   []Context `xml:"Context"`
}

// Valve is a Valve element; unused attributes are left out.
type Valve struct {
	ClassName string `xml:"className,attr"`
	Directory string `xml:"directory,attr,omitempty"`
	Prefix    string `xml:"prefix,attr,omitempty"`
	Suffix    string `xml:"suffix,attr,omitempty"`
	Pattern   string `xml:"pattern,attr,omitempty"`
	Filter    string `xml:"filter,attr,omitempty"`
}

// Context is one web application.
type Context struct {
	Path       string `xml:"path,attr"`
	DocBase    string `xml:"docBase,attr"`
	Reloadable bool   `xml:"reloadable,attr"`
}

// TomcatCluster is an Engine's session-replication cluster (SimpleTcpCluster).
type TomcatCluster struct {
	ClassName          string     `xml:"className,attr"`
	ChannelSendOptions int        `xml:"channelSendOptions,attr"`
	Manager            Manager    `xml:"Manager"`
	Channel            Channel    `xml:"Channel"`
	Valves             []Valve    `xml:"Valve"`
	ClusterListeners   []Listener `xml:"ClusterListener"`
}

// Manager is the cluster's session manager.
type Manager struct {
	ClassName                    string `xml:"className,attr"`
	ExpireSessionsOnShutdown     bool   `xml:"expireSessionsOnShutdown,attr"`
	NotifyListenersOnReplication bool   `xml:"notifyListenersOnReplication,attr"`
}

// Channel is the cluster's group channel.
type Channel struct {
	ClassName    string            `xml:"className,attr"`
	Membership   MembershipService `xml:"Membership"`
	Receiver     Receiver          `xml:"Receiver"`
	Sender       Sender            `xml:"Sender"`
	Interceptors []Listener        `xml:"Interceptor"`
}

// MembershipService is McastService (Address, Port, Frequency, DropTime) or
// StaticMembershipService (Members).
//
// For static membership every node of the app is listed as a Member, the local one
// included: Tomcat (9.0.17 and later) picks the local member as the one whose host and
// port equal the Receiver's address and port, so every node carries the same list. This
// needs a Receiver address that is the node's own, not "auto".
type MembershipService struct {
	ClassName string `xml:"className,attr"`
	Address   string `xml:"address,attr,omitempty"`
	Port      int    `xml:"port,attr,omitempty"`
	Frequency int    `xml:"frequency,attr,omitempty"`
	DropTime  int    `xml:"dropTime,attr,omitempty"`
	// Static membership's pings: with UseThread a thread of its own asks every member
	// every PingIntervalMs, waiting RPCTimeoutMs for the answers, and a member that did
	// not answer for ExpirationTimeMs is dropped. 0 and false leave Tomcat's.
	UseThread        bool           `xml:"useThread,attr,omitempty"`
	PingIntervalMs   int            `xml:"pingInterval,attr,omitempty"`
	RPCTimeoutMs     int            `xml:"rpcTimeout,attr,omitempty"`
	ExpirationTimeMs int            `xml:"expirationTime,attr,omitempty"`
	Members          []StaticMember `xml:"Member"`
}

// StaticMember is one member of a static membership.
type StaticMember struct {
	ClassName string `xml:"className,attr"`
	Host      string `xml:"host,attr"`
	Port      int    `xml:"port,attr"`
	UniqueID  string `xml:"uniqueId,attr"`
}

// Receiver is the channel's NioReceiver.
type Receiver struct {
	ClassName       string `xml:"className,attr"`
	Address         string `xml:"address,attr"`
	Port            int    `xml:"port,attr"`
	AutoBind        int    `xml:"autoBind,attr"`
	SelectorTimeout int    `xml:"selectorTimeout,attr"`
	MaxThreads      int    `xml:"maxThreads,attr"`
	// RxBufSize is each accepted connection's socket receive buffer and each receiver
	// thread's read buffer (Tribes' default 64 KiB; see WrittenBuffer).
	RxBufSize int `xml:"rxBufSize,attr,omitempty"`
}

// Sender is the channel's ReplicationTransmitter with its transport.
type Sender struct {
	ClassName string   `xml:"className,attr"`
	Transport Listener `xml:"Transport"`
}

// DefaultListeners are the lifecycle listeners of Tomcat 10.1's default server.xml.
func DefaultListeners() []Listener {
	return []Listener{
		{ClassName: "org.apache.catalina.startup.VersionLoggerListener"},
		{ClassName: "org.apache.catalina.core.AprLifecycleListener"},
		{ClassName: "org.apache.catalina.core.JreMemoryLeakPreventionListener"},
		{ClassName: "org.apache.catalina.mbeans.GlobalResourcesLifecycleListener"},
		{ClassName: "org.apache.catalina.core.ThreadLocalLeakPreventionListener"},
	}
}

// NewServerXML returns node n's server.xml: one Service per app of c.
func NewServerXML(c Cluster, n Node) *ServerXML {
	s := &ServerXML{Port: 8005, Shutdown: "SHUTDOWN", Listeners: DefaultListeners()}
	// Tomcat binds its ports when it loads, long before it serves (a restarted node
	// deploys its apps and waits for the cluster's sessions first: 15-30 s on a busy
	// machine): the kernel accepts connections that nobody answers, so mod_jk waits out
	// its ping timeout and Nginx its read timeout on every request it sends there, and
	// HAProxy's timeout server ran out on some (5 of 10,335 requests failed after a kill
	// -9 on the lab). Bound at start, a node that does not serve yet refuses, and the
	// balancers go to another at once.
	bindAtStart := ptrTo(false)
	for _, a := range c.Apps {
		svc := Service{
			Name: a.Service,
			Connectors: []Connector{
				{Port: a.HTTPPort, Protocol: ProtocolHTTP, ConnectionTimeout: 20000, RedirectPort: a.RedirectPort, BindOnInit: bindAtStart},
				{
					Port: a.AJPPort, Protocol: ProtocolAJP, Address: n.Address, RedirectPort: a.RedirectPort,
					Secret: c.AJPSecret, SecretRequired: true, BindOnInit: bindAtStart,
				},
			},
			Engine: Engine{
				Name: a.Service, DefaultHost: "localhost", JvmRoute: a.JvmRoute(n),
				Host: Host{
					Name: "localhost", AppBase: "webapps",
					Valves: []Valve{{
						ClassName: ClassAccessLogValve, Directory: "logs", Prefix: a.AccessLogPrefix, Suffix: ".txt",
						Pattern: `%h %l %u %t "%r" %s %b`,
					}},
					// The release's own folder: a new release changes this line, which
					// Tomcat reads only at start (App.ReleaseDir).
					Contexts: []Context{{Path: "", DocBase: a.ReleaseDir()}},
				},
			},
		}
		if c.Membership != NoReplication {
			svc.Engine.Cluster = newTomcatCluster(c, a, n)
			svc.Engine.Valves = []Valve{{ClassName: ClassAbandonedRequestValve}, {ClassName: ClassWokenNodeValve}}
		}
		s.Services = append(s.Services, svc)
	}
	return s
}

func ptrTo[T any](v T) *T { return &v }

func newTomcatCluster(c Cluster, a App, n Node) *TomcatCluster {
	m := MembershipService{
		ClassName: ClassMcastService, Address: a.MulticastAddress, Port: a.MulticastPort,
		Frequency: 500, DropTime: 3000,
	}
	if c.Membership == Static {
		// Pings every second, on a thread of their own (without it they wait for the
		// channel's heartbeat, every 5 s): a node that was cut off is a member again
		// about a second after its return, and one that stops answering is dropped
		// after 3 s, as McastService's dropTime above. rpcTimeout is Tomcat's 3 s, said
		// here because a starting node waits that long at most for the others' answers
		// to its start message before its DeltaManager asks them for the sessions: with
		// 1 s a node restarted on a busy machine (load average 40) heard no answer in
		// time, started without the sessions and never passed the drain's joined gate.
		m = MembershipService{ClassName: ClassStaticMembership,
			UseThread: true, PingIntervalMs: 1000, RPCTimeoutMs: 3000, ExpirationTimeMs: 3000}
		for _, member := range c.Nodes {
			m.Members = append(m.Members, NewStaticMember(member.Address, a.ReceiverPort))
		}
	}
	return &TomcatCluster{
		ClassName: ClassSimpleTcpCluster, ChannelSendOptions: c.Replication.ChannelSendOptions(),
		Manager: Manager{ClassName: ClassDeltaManager, NotifyListenersOnReplication: true},
		Channel: Channel{
			ClassName:  ClassGroupChannel,
			Membership: m,
			Receiver: Receiver{
				ClassName: ClassNioReceiver, Address: n.Address, Port: a.ReceiverPort,
				AutoBind: 100, SelectorTimeout: 5000, MaxThreads: 6,
				RxBufSize: writtenBufferOr0(c.Replication),
			},
			// timeout is how long a send waits for the other node's ack (3 s by
			// default), but Tribes' ParallelNioSender (10.1.60) looks at it only when
			// its selector returns, and it selects with a fixed 5 s: a synchronous send
			// to a node that hangs, is cut off or is busy starting waits up to 5 s
			// whatever this says (measured in session 5, see Replication).
			Sender: Sender{ClassName: ClassReplicationSender, Transport: Listener{ClassName: transportClass(c.Replication),
				Attrs: transportAttrs(c.Replication)}},
			Interceptors: replicationInterceptors(c.Replication),
		},
		Valves: []Valve{
			{ClassName: ClassReplicationValve, Filter: StaticFilesFilter},
			{ClassName: ClassJvmRouteBinderValve},
		},
		ClusterListeners: []Listener{{ClassName: ClassClusterSession}},
	}
}

// Replication says when a node sends a request's session change to the others.
//
// Which is the default was measured on the lab under the load check (16 users, both
// sites; 2 cores shared with other work, load average 15-60), each fault once:
//
//   - Latency is within the machine's noise: p50/p99 without a fault 39.2/249.5 ms sync
//     (load 22) against 35.7/314.4 ms async (load 17); an earlier session 42.6-45.2 /
//     262-278 ms sync against 30.2-82.1 / 246-490 ms async.
//   - kill -9 of the Tomcat that holds the sessions: async lost answered updates behind
//     Nginx (5 counts broken of 19,355 requests: the users whose last update had not
//     left the killed node saw their count go back by one on the other); sync lost none
//     (0 broken of 11,635 behind Apache), but the 4 GETs the killed node was answering
//     failed (502): it had done them and sent them on, so mod_jk rightly did not send
//     them again, which would have counted them twice.
//   - A frozen web host (docker pause): async failed 14 requests, all in the first 5 s
//     (Apache); sync stalled the healthy node's requests on acknowledgements until about
//     8.5 s after the freeze (the frozen member expired after 3 s, sends already under
//     way still waited out their ack timeout), so mod_jk's reply timeout failed them too:
//     22 failed, 4 after the first 5 s; cut off from the network: 21 failed, 4 after.
//
// Session 5 (Apache lab, static membership, load average 14-31): sync still failed
// the healthy node's requests while its peer was frozen (12 after the first 5 s), cut
// off (4) or starting (8 in a rolling config change): each acknowledged send to such a
// peer waits out ParallelNioSender's fixed 5 s select until the membership drops the
// peer (web2's log, host cut off: peer dropped at 14:52:38.31, sends begun before it
// failed "Operation has timed out([1000] ms.)" until 14:52:43.29), and mod_jk gives up
// after 2 s. Faster pings (0.5 s, rpcTimeout and expiry 1.5 s) still left 9 failed after
// a freeze's first 5 s, and a restarted node never got the session state. Note that
// channelSendOptions="0" (neither async nor acknowledged) is not a mode: Tomcat's string
// setter ignores a value that is not above 0 and keeps 8.
//
// So asynchronous replication stays the default: a hung or cut-off node, the likelier
// fault, costs the users of the healthy node nothing; a crash can cost a user the last
// update. SyncReplication (session_replication: sync) is for clusters whose nodes fail
// by crashing and that would rather fail a request than lose an answered update.
type Replication int

const (
	// AsyncReplication (channelSendOptions 8, the runbook's) answers first and sends
	// the change right after, in order (OrderInterceptor): a node that dies between the
	// answer and the send loses that one update. The default.
	AsyncReplication Replication = iota
	// SyncReplication (channelSendOptions 6: acknowledged, synchronous) answers the
	// request only once every other node has the change: a node that goes away right
	// after an answer loses nothing the user saw; but a node that hangs holds up the
	// others' requests until the failure detector takes it out.
	SyncReplication
	// WrittenReplication (channelSendOptions 256: neither asynchronous nor
	// acknowledged) sends the change on the request's own thread and answers once it is
	// written to every other node's connection, without waiting for the peer: the
	// change is in the kernel's hands before the user sees the answer, so a node killed
	// or frozen right after it still delivers it (the kernel flushes a dead process's
	// sockets and a paused container's network stack runs on), and a peer that hangs
	// costs nothing until its socket buffer is full. 256 is a bit no Tribes class of
	// Tomcat 10.1 reads; 0 cannot be used (Tomcat's string setter ignores a value not
	// above 0 and keeps 8), and 16 is SEND_OPTIONS_SECURE, a TLS send in newer Tribes.
	//
	// Measured in session 6 (Apache lab, 4 runs, load average 10-36): kill -9 and a
	// frozen host met issue 7's bar in every run (0 broken; a freeze's 11-14 failed
	// requests all in its first 5 s), and so did the rolling restarts; a host cut off
	// for 30 s broke 16 counts on its return in 2 of 2 runs. Tribes keeps the pooled
	// connections to a member that went away (PooledSender.remove does nothing), and
	// those whose buffer filled while the peer was cut off are used again when it
	// returns: each written send on them waits out ParallelNioSender's fixed 5 s select
	// on the request's thread, mod_jk (reply_timeout 2 s) puts the healthy node in
	// error, and its sessions go to the returning node's stale copies (recycling them
	// every 3 s with keepAliveTime, or a 2 MiB send buffer, traded that for other
	// losses). With WrittenBuffer each way every Apache fault met the bar in 4 of 4
	// runs, but a rolling restart after a cut lost 7-8 sessions in 2 of 4: changes
	// written into a connection left from the cut, which the larger buffer never lets
	// fail, did not arrive (README, Session replication).
	//
	// So a written cluster's channel closes those connections: its Transport is
	// ClassFreshConnectionsSender and its last Interceptor
	// ClassFreshConnectionsInterceptor, cauldron's own Tribes classes (recipes.TribesJar
	// compiles them on the node), which close every pooled connection to a member when
	// the membership says it is added back, each before that pooled sender's next
	// send. Closing them when it disappeared too failed 9 requests of the healthy node
	// in 1 of 2 runs: senders reconnected to the cut-off peer in the 0.5 s before the
	// failure detector confirmed it gone, each for ParallelNioSender's 5 s. Session 7
	// (Apache lab, slot 1, the faults then the rolling restarts on the same lab): see
	// the README's table.
	WrittenReplication
)

// WrittenBuffer is the socket buffer, each way, of a written cluster's connections
// (PooledParallelSender's txBufSize, NioReceiver's rxBufSize): a written send blocks
// the request once the change no longer fits in the sender's and the peer's socket
// buffers, so they must hold every change a node sends a peer that hangs or is cut off
// until the membership drops it (expirationTime 3 s; measured in session 6 with
// Tribes' 64 KiB each way: the healthy node's requests stalled up to 5 s about
// a second after the peer froze). 1 MiB each way holds about 30 s of the load check's
// changes (about 60 KB a second per node); the receiver's also sizes each of its
// threads' read buffers, so it is not made larger. The kernel caps it at
// net.core.wmem_max and rmem_max.
const WrittenBuffer = 1 << 20

func writtenBufferOr0(r Replication) int {
	if r == WrittenReplication {
		return WrittenBuffer
	}
	return 0
}

// transportClass is the channel's pooled sender: a written cluster's closes its
// connections to a member that went away (ClassFreshConnectionsSender).
func transportClass(r Replication) string {
	if r == WrittenReplication {
		return ClassFreshConnectionsSender
	}
	return ClassPooledParallelSender
}

// replicationInterceptors are ReplicationInterceptors, and for a written cluster
// ClassResetOnDepartureInterceptor first, above the failure detector, which has
// checked a member it says is gone (no send goes to it after), and
// ClassFreshConnectionsInterceptor last, next to the transport: it hears of a
// member's return from the membership itself, before any send can go to it.
//
// A written send is done once the change is in the kernel's socket buffer, and what a
// node writes a peer in the moment its host is cut off stays there for the whole cut
// and is delivered when the host is back: a session's rename among it took a live
// session from the peer in CI (session 20, the e2e test
// TestARenameSentAsAHostWasCutOffDoesNotTakeASessionFromTheNodeThatStayed), when the
// peer's OrderInterceptor, which had forgotten the member's count, took the late
// message as the first of a new count. The reset drops it.
func replicationInterceptors(r Replication) []Listener {
	l := ReplicationInterceptors(r)
	if r == WrittenReplication {
		l = append([]Listener{{ClassName: ClassResetOnDepartureInterceptor}}, l...)
		l = append(l, Listener{ClassName: ClassFreshConnectionsInterceptor})
	}
	return l
}

func transportAttrs(r Replication) []xml.Attr {
	attrs := []xml.Attr{{Name: xml.Name{Local: "timeout"}, Value: "1000"}}
	if r == WrittenReplication {
		attrs = append(attrs, xml.Attr{Name: xml.Name{Local: "txBufSize"}, Value: strconv.Itoa(WrittenBuffer)})
	}
	return attrs
}

// OrderedSendOptions are the optionFlags of a replicating channel's two
// OrderInterceptors, whatever the cluster's mode: the bits of the messages sent without
// an acknowledgement, asynchronous (8, async's) and written (256, written's); a
// synchronous cluster sends its changes with neither. A node numbers a message by the
// interceptor whose bit it carries and the receiver strips the number by its own, so
// nodes must agree on them: with both on every node, nodes of different modes
// understand each other and a rolling restart can switch a running cluster from one
// mode to another (with one flag, the mode's own, a node of the other mode passed the
// number up as part of the message: "Unable to deserialize", and the switch stopped at
// its joined gate).
func OrderedSendOptions() []int { return []int{sendOptionsAsynchronous, sendOptionsWritten} }

// ChannelSendOptions is the SimpleTcpCluster attribute for r.
func (r Replication) ChannelSendOptions() int {
	switch r {
	case AsyncReplication:
		return sendOptionsAsynchronous
	case WrittenReplication:
		return sendOptionsWritten
	}
	return sendOptionsUseAck | sendOptionsSynchronizedAck
}

func (r Replication) String() string {
	switch r {
	case SyncReplication:
		return "sync"
	case WrittenReplication:
		return "written"
	case AsyncReplication:
		return "async"
	}
	return fmt.Sprintf("Replication(%d)", int(r))
}

// ParseReplication reads "sync", "written" or "async".
func ParseReplication(s string) (Replication, error) {
	switch s {
	case "sync":
		return SyncReplication, nil
	case "written":
		return WrittenReplication, nil
	case "async":
		return AsyncReplication, nil
	}
	return 0, fmt.Errorf("%q is not sync, written or async", s)
}

// ReplicationInterceptors are a replicating Channel's interceptors, from the channel
// (top) down to the transport.
//
// The runbook's asynchronous replication (channelSendOptions="8") hands each message to
// MessageDispatchInterceptor's thread pool, whose threads send it over any of the
// PooledParallelSender's connections, and the peer's NioReceiver threads take those
// connections in parallel: two changes of one session a few milliseconds apart can reach
// DeltaManager out of order, which then keeps the older one, or drops a change of a
// session it has not been told of yet. OrderInterceptor numbers every message per
// destination and hands them up on the receiving side in that order. It goes on top:
// above MessageDispatchInterceptor, so that it numbers in the order the requests sent,
// not the order the pool's threads happen to run; and above TcpFailureDetector, whose
// probes come up from the transport without a number and are taken off there. Every node
// must carry it: it adds four bytes to each message. Tomcat 10.1 logs a harmless WARNING
// at each start that OrderInterceptor "is not compliant with JMX specification" (it has
// no MBean interface, so it is left out of JMX); the channel works all the same.
//
// OrderInterceptors order only the messages sent without an acknowledgement (their
// optionFlags, see OrderedSendOptions; r is for the interceptors that differ by mode,
// none today): a drained node replicates synchronously (see
// recipes.ClusterSendOptions), and an acknowledged message must not go through it.
// It holds a message that came before an earlier-numbered one (another request's,
// sent a moment later by another thread) and returns at once, so the receiver
// acknowledges a change it has not applied yet: the drained node answers, the
// balancer sends the user's next request to the other node, which does not have the
// change (1 broken count in 3 of 8 CI rollouts in session 6, 12-46 ms after the
// answer, at the drain's switch-over). An acknowledged send needs no numbering: the
// user's next request leaves only once the change is applied.
//
// Each is cauldron's subclass (ClassGaplessOrderInterceptor): Tribes' own numbers a
// message under its lock and sends it after, so a request thread can write #k while
// another still has #k-1 on its way; a node killed between the two left its peer
// holding #k, an update the user saw answered, until it found the node gone, while the
// user's next request was already there (2 counts broken after a kill -9 on the Nginx
// lab, session 15).
//
// forwardExpired="false": a message still held when its expire time (3 s) has passed
// is dropped, not handed up late. The messages a node sends a peer just as it drops
// off the network (a host cut off) wait in its kernel's socket buffer for the whole
// cut and arrive when the host is back, numbered from before: OrderInterceptor reset
// its count for the peer when the peer disappeared, so it holds them, and 3 s later
// Tomcat's default forwards them. One of them can be a session's rename: at the cut,
// the cut host's balancer sends a request for the other node's session to its own node
// (the other is unreachable), whose JvmRouteBinderValve renames the session there and
// tells the cluster. Applied seconds after the host's return, that rename took a live
// session away from the node that had served it all along: its next request made a
// new one (2 sessions lost on the Nginx lab in CI, session 13; reproduced by hand 3
// times out of 3 in session 14, and 0 times with this setting). A message that truly
// waits more than 3 s behind a gap is then lost instead of applied out of order.
func ReplicationInterceptors(r Replication) []Listener {
	var l []Listener
	for _, flag := range OrderedSendOptions() {
		l = append(l, Listener{ClassName: ClassGaplessOrderInterceptor, Attrs: []xml.Attr{
			{Name: xml.Name{Local: "optionFlag"}, Value: strconv.Itoa(flag)},
			{Name: xml.Name{Local: "forwardExpired"}, Value: "false"},
		}})
	}
	return append(l, []Listener{
		// Tribes' TcpFailureDetector, but a node restarted under load is counted again
		// (ClassRejoinFailureDetector): on the lab the peer's second cluster left it out
		// in 5 of 8 restarts, and sent it none of its session changes.
		{ClassName: ClassRejoinFailureDetector, Attrs: []xml.Attr{
			// A frozen node (a hung JVM, a paused host) still accepts connections and
			// takes what is sent into its socket buffer, so the send test alone keeps it
			// a member for ever, and with acknowledged replication every request of the
			// other nodes waits out the ack timeout. The read test waits for its answer.
			{Name: xml.Name{Local: "performReadTest"}, Value: "true"},
			{Name: xml.Name{Local: "readTestTimeout"}, Value: "500"},
			{Name: xml.Name{Local: "connectTimeout"}, Value: "500"},
		}},
		{ClassName: ClassMessageDispatch},
	}...)
}

// NewStaticMember returns the member listening on host:port. Its uniqueId is derived
// from host and port, so every node computes the same one for it.
func NewStaticMember(host string, port int) StaticMember {
	sum := sha256.Sum256([]byte(host + ":" + strconv.Itoa(port)))
	parts := make([]string, 16)
	for i, b := range sum[:16] {
		// Tomcat parses each value with Byte.parseByte: signed, and no spaces.
		parts[i] = strconv.Itoa(int(int8(b)))
	}
	return StaticMember{
		ClassName: ClassStaticMember, Host: host, Port: port,
		UniqueID: "{" + strings.Join(parts, ",") + "}",
	}
}

// Render validates s and returns it as an XML document.
func (s *ServerXML) Render() ([]byte, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.WriteString(xml.Header)
	b.WriteString("<!-- Generated by cauldron; changes here are overwritten. -->\n")
	enc := xml.NewEncoder(&b)
	enc.Indent("", "  ")
	if err := enc.Encode(s); err != nil {
		return nil, fmt.Errorf("server.xml: encode: %w", err)
	}
	b.WriteString("\n")
	return b.Bytes(), nil
}

// Validate reports every mistake in s that would stop Tomcat, weaken it or break
// replication.
func (s *ServerXML) Validate() error {
	var errs []error
	ports := portSet{}
	if s.Port != -1 {
		errs = ports.add(errs, "server.xml: shutdown port", s.Port)
	}
	if s.Shutdown == "" {
		errs = append(errs, errors.New("server.xml: the shutdown command is empty"))
	}
	if len(s.Services) == 0 {
		errs = append(errs, errors.New("server.xml: no Service"))
	}
	names, routes := map[string]bool{}, map[string]bool{}
	groups, receivers := map[string]string{}, portSet{}
	for _, svc := range s.Services {
		at := fmt.Sprintf("server.xml: Service %q", svc.Name)
		if svc.Name == "" {
			errs = append(errs, errors.New("server.xml: a Service has no name"))
		}
		errs = appendIfSeen(errs, names, svc.Name, at+": name used twice")
		if len(svc.Connectors) == 0 {
			errs = append(errs, fmt.Errorf("%s: no Connector", at))
		}
		for _, c := range svc.Connectors {
			errs = append(errs, validateConnector(at, c, ports)...)
		}
		e := svc.Engine
		if e.Name == "" {
			errs = append(errs, fmt.Errorf("%s: the Engine has no name", at))
		}
		if e.JvmRoute == "" {
			errs = append(errs, fmt.Errorf("%s: the Engine has no jvmRoute", at))
		} else if !isName(e.JvmRoute) {
			errs = append(errs, fmt.Errorf("%s: jvmRoute %q must be letters, digits, '-' or '_' (it is a mod_jk worker name)", at, e.JvmRoute))
		}
		errs = appendIfSeen(errs, routes, e.JvmRoute, at+": jvmRoute "+strconv.Quote(e.JvmRoute)+" used twice")
		if e.DefaultHost != e.Host.Name || e.Host.Name == "" {
			errs = append(errs, fmt.Errorf("%s: Engine defaultHost %q is not its Host's name %q", at, e.DefaultHost, e.Host.Name))
		}
		if e.Host.AppBase == "" {
			errs = append(errs, fmt.Errorf("%s: the Host has no appBase", at))
		}
		if len(e.Host.Contexts) == 0 {
			errs = append(errs, fmt.Errorf("%s: no Context", at))
		}
		for _, ctx := range e.Host.Contexts {
			if ctx.Path != "" && (!strings.HasPrefix(ctx.Path, "/") || strings.HasSuffix(ctx.Path, "/")) {
				errs = append(errs, fmt.Errorf("%s: Context path %q must be empty or start and not end with /", at, ctx.Path))
			}
			if !path.IsAbs(ctx.DocBase) {
				errs = append(errs, fmt.Errorf("%s: Context docBase %q is not an absolute path", at, ctx.DocBase))
			}
		}
		if e.Cluster != nil {
			errs = append(errs, validateTomcatCluster(at, e.Cluster, groups, receivers)...)
		}
	}
	return errors.Join(errs...)
}

func validateConnector(at string, c Connector, ports portSet) []error {
	var errs []error
	at = fmt.Sprintf("%s: %s Connector", at, c.Protocol)
	errs = ports.add(errs, at+": port", c.Port)
	if c.RedirectPort != 0 {
		if err := checkPort(at+": redirectPort", c.RedirectPort); err != nil {
			errs = append(errs, err)
		}
	}
	switch c.Protocol {
	case ProtocolHTTP:
	case ProtocolAJP:
		// Ghostcat: an AJP connector open to everyone and without a secret hands out files.
		if c.Secret == "" || !c.SecretRequired {
			errs = append(errs, fmt.Errorf("%s: needs a secret and secretRequired=\"true\"", at))
		} else if !isSecret(c.Secret) {
			errs = append(errs, fmt.Errorf("%s: the secret holds whitespace, quotes, '\\', '<', '>', '&' or control characters", at))
		}
		if a, err := netip.ParseAddr(c.Address); c.Address == "" || (err == nil && a.IsUnspecified()) {
			errs = append(errs, fmt.Errorf("%s: address %q must be the node's private address", at, c.Address))
		} else if !isHost(c.Address) {
			errs = append(errs, fmt.Errorf("%s: address %q is not an IP address or host name", at, c.Address))
		}
	default:
		errs = append(errs, fmt.Errorf("%s: unknown protocol (want %s or %s)", at, ProtocolHTTP, ProtocolAJP))
	}
	return errs
}

// validateTomcatCluster checks one Engine's cluster; groups and receivers carry the
// membership groups and receiver ports of the Services before it, which must differ.
func validateTomcatCluster(at string, c *TomcatCluster, groups map[string]string, receivers portSet) []error {
	var errs []error
	at += ": Cluster"
	ch := c.Channel
	errs = receivers.add(errs, at+": Receiver port", ch.Receiver.Port)
	if ch.Receiver.Address == "" {
		errs = append(errs, fmt.Errorf("%s: Receiver address is empty (use \"auto\" or the node's address)", at))
	}
	errs = append(errs, validateInterceptors(at, c.ChannelSendOptions, ch.Interceptors)...)
	errs = append(errs, validateFreshConnections(at, ch)...)
	m := ch.Membership
	switch m.ClassName {
	case ClassMcastService:
		a, err := netip.ParseAddr(m.Address)
		if err != nil || !a.IsMulticast() {
			errs = append(errs, fmt.Errorf("%s: membership address %q is not a multicast address", at, m.Address))
		}
		if err := checkPort(at+": membership port", m.Port); err != nil {
			errs = append(errs, err)
		}
		if m.Frequency <= 0 || m.DropTime <= m.Frequency {
			errs = append(errs, fmt.Errorf("%s: membership dropTime %d must exceed frequency %d > 0", at, m.DropTime, m.Frequency))
		}
		group := m.Address + ":" + strconv.Itoa(m.Port)
		if other, ok := groups[group]; ok {
			errs = append(errs, fmt.Errorf("%s: membership group %s is also %s's: their sessions would mix", at, group, other))
		}
		groups[group] = at
	case ClassStaticMembership:
		errs = append(errs, validateStaticMembers(at, m.Members, ch.Receiver)...)
	default:
		errs = append(errs, fmt.Errorf("%s: unknown membership class %q", at, m.ClassName))
	}
	return errs
}

// sendOptionsAsynchronous is Tribes' Channel.SEND_OPTIONS_ASYNCHRONOUS bit of
// channelSendOptions: MessageDispatchInterceptor sends such messages from its pool.
const sendOptionsAsynchronous = 8

// sendOptionsUseAck and sendOptionsSynchronizedAck are Tribes' SEND_OPTIONS_USE_ACK
// (the receiver acknowledges) and SEND_OPTIONS_SYNCHRONIZED_ACK (once it has processed
// the message).
const (
	sendOptionsUseAck          = 2
	sendOptionsSynchronizedAck = 4
)

// sendOptionsWritten is WrittenReplication's channelSendOptions: no bit Tribes reads,
// so the send is synchronous and unacknowledged.
const sendOptionsWritten = 256

// isOrderInterceptor tells Tribes' OrderInterceptor and cauldron's subclass of it.
func isOrderInterceptor(class string) bool {
	return class == ClassOrderInterceptor || class == ClassGaplessOrderInterceptor
}

// validateInterceptors checks the OrderInterceptors' place and flags (see
// ReplicationInterceptors).
func validateInterceptors(at string, sendOptions int, interceptors []Listener) []error {
	var errs []error
	var orders []int
	for i, l := range interceptors {
		if isOrderInterceptor(l.ClassName) {
			orders = append(orders, i)
		}
	}
	dispatch := slices.IndexFunc(interceptors, func(l Listener) bool { return l.ClassName == ClassMessageDispatch })
	if len(orders) == 0 && dispatch >= 0 && sendOptions&sendOptionsAsynchronous != 0 {
		errs = append(errs, fmt.Errorf("%s: asynchronous replication (channelSendOptions=%d) through MessageDispatchInterceptor without OrderInterceptor delivers a session's changes out of order", at, sendOptions))
	}
	if len(orders) == 0 {
		return errs
	}
	// optionFlag 0 (Tomcat's default) orders every message; others must take in the
	// cluster's own changes when they are not acknowledged, or these go unordered.
	ordered := sendOptions&sendOptionsUseAck != 0
	var flags []string
	for _, order := range orders {
		flag := 0
		for _, a := range interceptors[order].Attrs {
			if a.Name.Local != "optionFlag" {
				continue
			}
			n, err := strconv.Atoi(a.Value)
			if err != nil || n < 0 {
				errs = append(errs, fmt.Errorf("%s: OrderInterceptor optionFlag %q is not a number of channel send options", at, a.Value))
				ordered = true // said once
				continue
			}
			flag = n
		}
		flags = append(flags, strconv.Itoa(flag))
		if sendOptions&flag == flag {
			ordered = true
		}
		for i, l := range interceptors[:order] {
			switch l.ClassName {
			case ClassMessageDispatch, ClassTcpFailureDetector, ClassRejoinFailureDetector:
				errs = append(errs, fmt.Errorf("%s: OrderInterceptor (interceptor %d) must come before %s (interceptor %d)", at, order+1, l.ClassName[strings.LastIndexByte(l.ClassName, '.')+1:], i+1))
			}
		}
	}
	if !ordered {
		errs = append(errs, fmt.Errorf("%s: OrderInterceptor optionFlag=%s leaves the cluster's changes (channelSendOptions=%d) unordered", at, strings.Join(flags, ","), sendOptions))
	}
	return errs
}

// validateFreshConnections checks that cauldron's two Tribes classes come together:
// the interceptor tells the sender of membership changes, and only that sender acts
// on them (Tribes' own does nothing).
func validateFreshConnections(at string, ch Channel) []error {
	interceptor := slices.ContainsFunc(ch.Interceptors, func(l Listener) bool { return l.ClassName == ClassFreshConnectionsInterceptor })
	sender := ch.Sender.Transport.ClassName == ClassFreshConnectionsSender
	reset := slices.IndexFunc(ch.Interceptors, func(l Listener) bool { return l.ClassName == ClassResetOnDepartureInterceptor })
	detector := slices.IndexFunc(ch.Interceptors, func(l Listener) bool {
		return l.ClassName == ClassTcpFailureDetector || l.ClassName == ClassRejoinFailureDetector
	})
	switch {
	case interceptor && !sender:
		return []error{fmt.Errorf("%s: Interceptor %s needs the Transport %s, not %q: no other sender closes a connection when told", at, ClassFreshConnectionsInterceptor, ClassFreshConnectionsSender, ch.Sender.Transport.ClassName)}
	case sender && !interceptor:
		return []error{fmt.Errorf("%s: Transport %s needs the Interceptor %s: without it nothing tells the sender that a member went away", at, ClassFreshConnectionsSender, ClassFreshConnectionsInterceptor)}
	case reset >= 0 && !sender:
		return []error{fmt.Errorf("%s: Interceptor %s needs the Transport %s, not %q: no other sender resets a connection", at, ClassResetOnDepartureInterceptor, ClassFreshConnectionsSender, ch.Sender.Transport.ClassName)}
	case reset >= 0 && detector >= 0 && reset > detector:
		return []error{fmt.Errorf("%s: Interceptor %s (interceptor %d) must come before the failure detector (interceptor %d): below it, a member the membership only suspects is cut off while sends to it go on", at, ClassResetOnDepartureInterceptor, reset+1, detector+1)}
	}
	return nil
}

func validateStaticMembers(at string, members []StaticMember, r Receiver) []error {
	var errs []error
	if len(members) == 0 {
		errs = append(errs, fmt.Errorf("%s: static membership lists no Member", at))
	}
	ids, local := map[string]bool{}, false
	for _, m := range members {
		mat := fmt.Sprintf("%s: Member %s:%d", at, m.Host, m.Port)
		if !isHost(m.Host) {
			errs = append(errs, fmt.Errorf("%s: host is not an IP address or host name", mat))
		}
		if err := checkPort(mat+": port", m.Port); err != nil {
			errs = append(errs, err)
		}
		if !validUniqueID(m.UniqueID) {
			errs = append(errs, fmt.Errorf("%s: uniqueId %q is not 16 comma-separated bytes in braces", mat, m.UniqueID))
		}
		errs = appendIfSeen(errs, ids, m.UniqueID, mat+": uniqueId used twice")
		local = local || (m.Host == r.Address && m.Port == r.Port)
	}
	if !local {
		errs = append(errs, fmt.Errorf("%s: no Member is the Receiver's %s:%d, so Tomcat cannot find the local member", at, r.Address, r.Port))
	}
	return errs
}

func validUniqueID(s string) bool {
	inner, ok := strings.CutPrefix(s, "{")
	inner, ok2 := strings.CutSuffix(inner, "}")
	if !ok || !ok2 {
		return false
	}
	parts := strings.Split(inner, ",")
	if len(parts) != 16 {
		return false
	}
	for _, p := range parts {
		if _, err := strconv.ParseInt(p, 10, 8); err != nil {
			return false
		}
	}
	return true
}
