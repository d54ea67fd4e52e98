package keeper_test

import (
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/cauldron-go/cauldron/transport/keeper"
)

// pair is a connected pair of unix sockets: near is what a run would hand on, far
// stands for the idle shell at the other end.
func pair(t *testing.T) (near, far net.Conn) {
	t.Helper()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	conn := func(fd int) net.Conn {
		f := os.NewFile(uintptr(fd), "pair")
		defer f.Close()
		c, err := net.FileConn(f)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	return conn(fds[0]), conn(fds[1])
}

// keeperDir is a private directory for a keeper of the test's own, stopped at the end.
func keeperDir(t *testing.T) string {
	dir := filepath.Join(t.TempDir(), "keeper")
	t.Cleanup(func() { keeper.Stop(dir) })
	return dir
}

func park(t *testing.T, dir, key, token string, c net.Conn) {
	t.Helper()
	if err := keeper.Park(context.Background(), dir, key, token, c.(syscall.Conn), time.Minute); err != nil {
		t.Fatal(err)
	}
	c.Close() // the keeper holds its own
}

// endsSoon says whether c's other end is closed within a few seconds.
func endsSoon(c net.Conn) bool {
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var b [1]byte
	_, err := c.Read(b[:])
	return err == io.EOF
}

func TestAParkedSocketIsTakenBackWithItsTokenAndStillConnected(t *testing.T) {
	dir := keeperDir(t)
	near, far := pair(t)
	park(t, dir, "docker\nweb1", "cauldron-0123", near)

	got, token, ok, err := keeper.Take(context.Background(), dir, "docker\nweb1")
	if err != nil || !ok {
		t.Fatalf("take: ok %v, err %v", ok, err)
	}
	defer got.Close()
	if token != "cauldron-0123" {
		t.Errorf("token %q, want cauldron-0123", token)
	}
	if _, err := got.Write([]byte("ping\n")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	far.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(far, buf); err != nil || string(buf) != "ping\n" {
		t.Fatalf("the far end read %q, %v", buf, err)
	}
	if _, _, ok, _ := keeper.Take(context.Background(), dir, "docker\nweb1"); ok {
		t.Error("the same socket was handed out twice")
	}
}

func TestTheKeeperHandsOutNothingItDoesNotHold(t *testing.T) {
	dir := keeperDir(t)
	// No keeper runs yet.
	if _, _, ok, err := keeper.Take(context.Background(), dir, "docker\nweb1"); ok || err != nil {
		t.Fatalf("with no keeper: ok %v, err %v", ok, err)
	}
	near, _ := pair(t)
	park(t, dir, "docker\nweb1", "cauldron-1", near)
	if _, _, ok, err := keeper.Take(context.Background(), dir, "docker\nweb2"); ok || err != nil {
		t.Fatalf("another key: ok %v, err %v", ok, err)
	}
}

func TestAKeptSocketWhoseFarEndWritesOrEndsIsDropped(t *testing.T) {
	for _, tc := range []struct {
		name string
		do   func(far net.Conn)
	}{
		{"the far end writes", func(far net.Conn) { far.Write([]byte("x")) }},
		{"the far end ends", func(far net.Conn) { far.Close() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := keeperDir(t)
			near, far := pair(t)
			park(t, dir, "k", "cauldron-1", near)
			tc.do(far)
			deadline := time.Now().Add(5 * time.Second)
			for {
				c, _, ok, err := keeper.Take(context.Background(), dir, "k")
				if err != nil {
					t.Fatal(err)
				}
				if !ok {
					break
				}
				// Taken before the keeper saw it: hand it back and look again.
				if time.Now().After(deadline) {
					t.Fatal("the keeper still hands out a socket whose far end wrote or ended")
				}
				park(t, dir, "k", "cauldron-1", c)
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
}

func TestANewerSocketUnderTheSameKeyClosesTheOlder(t *testing.T) {
	dir := keeperDir(t)
	near1, far1 := pair(t)
	near2, far2 := pair(t)
	park(t, dir, "k", "cauldron-1", near1)
	park(t, dir, "k", "cauldron-2", near2)
	if !endsSoon(far1) {
		t.Error("the older socket is still open")
	}
	c, token, ok, err := keeper.Take(context.Background(), dir, "k")
	if err != nil || !ok || token != "cauldron-2" {
		t.Fatalf("take: %v %q %v", ok, token, err)
	}
	c.Close()
	if !endsSoon(far2) {
		t.Error("the taken socket did not end with its taker's close")
	}
}

func TestStopClosesWhatTheKeeperHolds(t *testing.T) {
	dir := keeperDir(t)
	near, far := pair(t)
	park(t, dir, "k", "cauldron-1", near)
	if err := keeper.Stop(dir); err != nil {
		t.Fatal(err)
	}
	if !endsSoon(far) {
		t.Error("a kept socket outlived the keeper's stop")
	}
	if _, _, ok, _ := keeper.Take(context.Background(), dir, "k"); ok {
		t.Error("a stopped keeper handed a socket out")
	}
}

func TestAKeptSocketIsClosedAfterItsIdleTime(t *testing.T) {
	dir := keeperDir(t)
	near, far := pair(t)
	if err := keeper.Park(context.Background(), dir, "k", "cauldron-1", near.(syscall.Conn), 500*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	near.Close()
	if !endsSoon(far) {
		t.Error("a socket kept for 0.5 s was still open 5 s later")
	}
}

func TestTheKeeperRefusesADirectoryOthersMayEnter(t *testing.T) {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	near, _ := pair(t)
	err := keeper.Park(context.Background(), dir, "k", "cauldron-1", near.(syscall.Conn), time.Minute)
	if err == nil {
		t.Fatal("parked in a directory others may enter")
	}
	if _, _, _, err := keeper.Take(context.Background(), dir, "k"); err == nil {
		t.Fatal("took from a directory others may enter")
	}
}
