package channel_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/cauldron-go/cauldron/transport"
	"github.com/cauldron-go/cauldron/transport/channel"
)

// openLocal opens a channel on sh -c Loop on this machine, with extra in front of PATH.
func openLocal(t *testing.T, extraPath string) *channel.Channel {
	t.Helper()
	sh := exec.Command("sh", "-c", channel.Loop)
	sh.Env = append(os.Environ(), "PATH="+extraPath+string(os.PathListSeparator)+os.Getenv("PATH"))
	in, _ := sh.StdinPipe()
	out, _ := sh.StdoutPipe()
	errs, _ := sh.StderrPipe()
	if err := sh.Start(); err != nil {
		t.Fatal(err)
	}
	kill := func(id string) { exec.Command("sh", "-c", channel.KillScript(id)).Run() }
	ch, err := channel.Open(in, out, errs, kill, func() error { sh.Process.Kill(); return sh.Wait() })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ch.Close() })
	return ch
}

// runAtOnce runs n commands "echo cmdI" pipelined, as a runner checking ahead does, and
// returns what each printed and returned.
func runAtOnce(ch *channel.Channel, n int) ([]string, []error) {
	outs := make([]bytes.Buffer, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			errs[i] = ch.Run(ctx, transport.Command{Line: fmt.Sprintf("echo cmd%d", i), Stdout: &outs[i]})
		}()
	}
	wg.Wait()
	got := make([]string, n)
	for i := range outs {
		got[i] = outs[i].String()
	}
	return got, errs
}

func TestTheFirstCommandsGoBesideTheSelfTestAndAllAnswer(t *testing.T) {
	ch := openLocal(t, t.TempDir())
	channel.Verify(ch, 10*time.Second)
	outs, errs := runAtOnce(ch, 50)
	for i := range outs {
		if errs[i] != nil || outs[i] != fmt.Sprintf("cmd%d\n", i) {
			t.Errorf("command %d: %q %v", i, outs[i], errs[i])
		}
	}
	time.Sleep(100 * time.Millisecond) // the verdict, in the background
	if err := ch.Broken(); err != nil {
		t.Errorf("a shell with an exact head was found broken: %v", err)
	}
}

func TestAHeadThatReadsPastItsCountRunsNoMisreadFrame(t *testing.T) {
	// The first head reads 3 bytes past its count: the frame behind the one it reads
	// is cut, and the frame marks alone must keep what is left of it from running. The
	// second reads whatever the pipe holds (up to 64 KiB): the frames behind are gone,
	// and it waits for more; Verify's self-test finds it out. Either way no command
	// may run from a misread frame, every one must answer, and the channel must say it
	// broke.
	real, err := exec.LookPath("head")
	if err != nil {
		t.Fatal(err)
	}
	heads := []struct {
		name, body string
		verify     bool
	}{
		{"three bytes past, marks alone", `n=$2; dd bs=1 count=$((n + 3)) 2>/dev/null | ` + real + ` -c "$n"`, false},
		{"a whole pipe, with Verify", `dd bs=65536 count=1 2>/dev/null | ` + real + ` "$@"`, true},
	}
	for _, h := range heads {
		t.Run(h.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "head"), []byte("#!/bin/sh\n"+h.body+"\n"), 0o755); err != nil {
				t.Fatal(err)
			}
			ch := openLocal(t, dir)
			start := time.Now()
			if h.verify {
				channel.Verify(ch, 2*time.Second)
			}
			outs, errs := runAtOnce(ch, 50)
			ran, other := 0, 0
			for i := range outs {
				switch {
				case errs[i] == nil && outs[i] == fmt.Sprintf("cmd%d\n", i):
					ran++ // read exactly, before the first misread
				case errors.Is(errs[i], channel.ErrNotStarted) && outs[i] == "":
					other++ // never started: the transport runs it another way
				default:
					t.Errorf("command %d: %q %v: want its own output, or not started", i, outs[i], errs[i])
				}
			}
			if err := ch.Broken(); err == nil {
				t.Error("the channel is not reported broken")
			}
			if took := time.Since(start); took > 10*time.Second {
				t.Errorf("the commands took %s to answer", took)
			}
			t.Logf("%d commands ran over the channel, %d were left to run another way; broken: %v", ran, other, ch.Broken())
		})
	}
}
