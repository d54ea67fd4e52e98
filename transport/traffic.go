package transport

import "sync"

// Traffic counts what a connection asked of its host.
//
// Commands is the number of Run, Put and Read calls (a Put or Read that runs commands
// of its own counts those too). A round trip is one stretch of time in which the
// controller waits on the host: it begins when an operation starts while no other
// operation of the connection is in flight, and ends when none is in flight again.
// Operations that overlap (pipelined over one channel, or concurrent sessions) share
// one round trip, so a converged host whose checks all run at once costs one round
// trip however many commands it runs; operations one after another cost one each.
//
// Connecting is not counted: the dial, SSH's handshake, and docker's check that the
// container answers (which opens its command channel) come before the first
// operation. Over SSH the first operation opens a session first, after a round trip of
// its own (Wait): the channel's, or the first command's own (sshconn runs a first
// command without input alone), so a converged host whose checks all go at once costs
// two; a warm run that takes over the shell an earlier run left (sshconn's
// Config.Persist) pays no such wait: one. The runner reports what
// connecting took apart (HostReport.ConnectMS).
type Traffic struct {
	mu         sync.Mutex
	inFlight   int
	commands   int
	roundTrips int
}

// TrafficCounts is a snapshot of Traffic.
type TrafficCounts struct {
	Commands   int `json:"commands"`
	RoundTrips int `json:"round_trips"`
}

// Begin notes an operation starting; call the function it returns when it ends.
func (t *Traffic) Begin() (end func()) {
	t.mu.Lock()
	t.commands++
	if t.inFlight == 0 {
		t.roundTrips++
	}
	t.inFlight++
	t.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			t.mu.Lock()
			t.inFlight--
			t.mu.Unlock()
		})
	}
}

// Wait notes one more round trip inside the operations in flight: a wait on the host
// before their commands go (opening the session that runs the command channel).
func (t *Traffic) Wait() {
	t.mu.Lock()
	t.roundTrips++
	t.mu.Unlock()
}

// Counts returns the counts so far.
func (t *Traffic) Counts() TrafficCounts {
	t.mu.Lock()
	defer t.mu.Unlock()
	return TrafficCounts{Commands: t.commands, RoundTrips: t.roundTrips}
}

// Counter is a connection that counts its traffic (sshconn and docker do).
type Counter interface {
	Traffic() TrafficCounts
}

// Pipelined is a connection on which a caller may start any number of commands at
// once: they queue on one command channel and reach the host in one round trip, and
// whatever the transport runs another way (a session or an exec of its own, once the
// channel is gone) it bounds itself. A connection that is not Pipelined, or says
// false, wants its callers to keep a few commands in flight at most.
type Pipelined interface {
	Pipelined() bool
}
