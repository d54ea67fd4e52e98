package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/cauldron-go/cauldron/runner"
	"github.com/cauldron-go/cauldron/shell"
	"github.com/cauldron-go/cauldron/steps"
	"github.com/cauldron-go/cauldron/transport"
)

// transferFloor measures, Pairs times, what part a's first run cannot go under on
// this machine: each host, every host at once, dialled as cauldron dials it, sent the
// JDK's bytes the way steps.Untar{SendPlain} sends them (the archive through Put into
// a file, at the same time its plain tar on the standard input of tar) and nothing
// else: no check, no owner, no rename, none of the other steps. Its CPU, controller
// and hosts, says how much of a first run is moving those bytes through SSH.
func (b *bencher) transferFloor(ctx context.Context, f *Fleet, archive string) error {
	cache, err := steps.DefaultPlainTarCache()
	if err != nil {
		return fmt.Errorf("bench: the transfer floor: %w", err)
	}
	plain, plainSize, err := steps.PlainTar(archive, cache)
	if err != nil {
		return fmt.Errorf("bench: the transfer floor: %w", err)
	}
	info, err := os.Stat(archive)
	if err != nil {
		return fmt.Errorf("bench: the transfer floor: %w", err)
	}
	fl := Floor{Part: "a", Hosts: len(f.Hosts), Work: fmt.Sprintf("the JDK's bytes alone (%s: its archive, %d MiB, into a file "+
		"and its plain tar, %d MiB, into tar, at once, one connection per host)", filepath.Base(archive), info.Size()>>20, plainSize>>20)}
	const dir = "/var/tmp/cauldron-bench-floor"
	hosts := f.Inventory()
	for range b.o.Pairs {
		if err := f.onEach(ctx, "rm -rf "+dir+" && mkdir -p "+dir+"/tree"); err != nil {
			return fmt.Errorf("bench: the transfer floor: %w", err)
		}
		if _, ok := f.settle(ctx); !ok {
			b.logf("the hosts were still busy before the transfer floor: measuring all the same")
		}
		before := f.cpuNow()
		took, err := timed(func() error {
			g, gctx := errgroup.WithContext(ctx)
			for _, h := range hosts {
				g.Go(func() error {
					c, err := runner.DialHost(gctx, h)
					if err != nil {
						return err
					}
					defer c.Close()
					var both errgroup.Group
					both.Go(func() error {
						a, err := os.Open(archive)
						if err != nil {
							return err
						}
						defer a.Close()
						return c.Put(gctx, transport.File{Path: dir + "/archive", Body: a, Mode: 0o600})
					})
					both.Go(func() error {
						p, err := os.Open(plain)
						if err != nil {
							return err
						}
						defer p.Close()
						_, err = transport.OutputWithInput(gctx, c, shell.Join("tar", "-x", "-f", "-", "-C", dir+"/tree"), p)
						return err
					})
					if err := both.Wait(); err != nil {
						return fmt.Errorf("%s: %w", h.Name, err)
					}
					return nil
				})
			}
			return g.Wait()
		})
		if err != nil {
			return fmt.Errorf("bench: the transfer floor: %w", err)
		}
		used := f.cpuNow().sub(before)
		b.logf("floor    %3d hosts  JDK bytes  %s  (controller CPU %.2fs, hosts CPU %.2fs)", len(f.Hosts), took.Round(time.Millisecond), used.self, used.hosts)
		fl.Seconds = append(fl.Seconds, took.Seconds())
		fl.ClientCPU = append(fl.ClientCPU, used.self)
		if used.hosts >= 0 {
			fl.HostsCPU = append(fl.HostsCPU, used.hosts)
		}
	}
	if err := f.onEach(ctx, "rm -rf "+dir); err != nil {
		return fmt.Errorf("bench: the transfer floor: %w", err)
	}
	fl.Median = median(fl.Seconds)
	b.res.Floors = append(b.res.Floors, fl)
	return nil
}
