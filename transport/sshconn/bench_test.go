package sshconn_test

import (
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/cauldron-go/cauldron/transport"
	"github.com/cauldron-go/cauldron/transport/channel/channeltest"
	"github.com/cauldron-go/cauldron/transport/sshconn"
)

// BenchmarkRunOverOneConnection is the cost of one command (a session and `true`) on
// a connection already open: what each step's check pays.
func BenchmarkRunOverOneConnection(b *testing.B) {
	srv := startSSHD(b)
	c := dial(b, srv.config(b))
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := c.Run(ctx, transport.Command{Line: "true"}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkUploadOfALargeFile compares, side by side in one run, the two ways a large
// artifact (68 MB, the size of a JDK tarball; CAULDRON_BENCH_UPLOAD names another file)
// can reach the host: Put's SFTP path, and the shell path every command-only transport
// uses (the content on the standard input of one command).
func BenchmarkUploadOfALargeFile(b *testing.B) {
	srv := startSSHD(b)
	c := dial(b, srv.config(b))
	ctx := context.Background()
	src := os.Getenv("CAULDRON_BENCH_UPLOAD")
	if src == "" {
		src = filepath.Join(b.TempDir(), "artifact.tar.gz")
		content := make([]byte, 68<<20)
		rand.Read(content) // incompressible, like a tarball
		if err := os.WriteFile(src, content, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	info, err := os.Stat(src)
	if err != nil {
		b.Fatal(err)
	}
	dest := filepath.Join(b.TempDir(), "uploaded.tar.gz")
	put := func(way func(transport.File) error) time.Duration {
		fh, err := os.Open(src)
		if err != nil {
			b.Fatal(err)
		}
		defer fh.Close()
		start := time.Now()
		if err := way(transport.File{Path: dest, Body: fh, Mode: 0o644, ModTime: info.ModTime()}); err != nil {
			b.Fatal(err)
		}
		return time.Since(start)
	}
	bySFTP := func(f transport.File) error { return c.Put(ctx, f) }
	byStdin := func(f transport.File) error { return transport.PutByShell(ctx, c, f) }
	// Alternating, so that the machine's load falls on both alike.
	var sftpTimes, stdinTimes []time.Duration
	b.SetBytes(2 * info.Size())
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		sftpTimes = append(sftpTimes, put(bySFTP))
		stdinTimes = append(stdinTimes, put(byStdin))
	}
	b.StopTimer()
	sftpMedian, stdinMedian := median(sftpTimes), median(stdinTimes)
	b.ReportMetric(sftpMedian.Seconds()*1000, "sftp-ms")
	b.ReportMetric(stdinMedian.Seconds()*1000, "stdin-ms")
	b.ReportMetric(float64(stdinMedian)/float64(sftpMedian), "stdin/sftp")
	if got, err := os.Stat(dest); err != nil || got.Size() != info.Size() {
		b.Fatalf("uploaded %v, %v; want %d bytes", got, err, info.Size())
	}
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// BenchmarkConvergedChecksPerSessionAgainstChannel is a converged web node's 36 checks,
// four at a time, over one connection: a session each against the command channel.
func BenchmarkConvergedChecksPerSessionAgainstChannel(b *testing.B) {
	srv := startSSHD(b)
	cfg := srv.config(b)
	cfg.NoChannel = true
	perSession := dial(b, cfg)
	channel := dial(b, srv.config(b))
	channeltest.BenchConvergedChecks(b, perSession, channel)
}

// BenchmarkDialThroughTheWarmDaemon is what each host of a warm run pays to get its
// connection: the unix socket, the request, the daemon's recheck of the host key and
// the SSH handshake between the run and the daemon (the host's connection is reused).
func BenchmarkDialThroughTheWarmDaemon(b *testing.B) {
	srv := startSSHD(b)
	cfg := srv.config(b)
	cfg.Persist, cfg.PersistDir, cfg.NoChannel = time.Minute, filepath.Join(b.TempDir(), "warm"), true
	b.Cleanup(func() { sshconn.StopWarmDaemon(cfg.PersistDir) })
	ctx := context.Background()
	dialClose := func() {
		c, err := sshconn.Dial(ctx, cfg)
		if err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
	dialClose() // starts the daemon and dials the host
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		dialClose()
	}
}
