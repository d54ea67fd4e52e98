package targets

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/cauldron-go/cauldron/bench"
)

// Bench measures cauldron against Ansible side by side, alternating, with medians and ratios: (a) the seed's Tomcat node on 2 hosts, (b) 4 operations on 10, 50 and 100 light SSH hosts, (c) the lab cluster's converged re-check, also with 80 ms RTT and 5% loss.
//
// Flags: -parts=abc (any of a, b, c), -hosts=10,50,100 (part b's fleet sizes),
// -pairs=3 (measurements per tool), -out=DIR (default .cauldron/bench: bench.json,
// bench.svg, the key and playbooks), -noansible (cauldron alone), -gobench (also run
// the packages' Go benchmarks, go test -bench, first). Ansible is Debian's package,
// installed when missing. Every container, network, qdisc and netfilter rule the bench makes is gone
// when it ends.
func Bench(ctx context.Context, parts *string, hosts *string, pairs *int, out *string, noansible *bool, gobench *bool) error {
	if deref(gobench) {
		if err := goCmd(ctx, "test", "-run=^$", "-bench=.", "-benchtime=20x", "./..."); err != nil {
			return err
		}
	}
	sizes, err := parseSizes(deref(hosts))
	if err != nil {
		return err
	}
	dir := cmp.Or(deref(out), filepath.Join(".cauldron", "bench"))
	res, err := bench.Run(ctx, bench.Options{Parts: deref(parts), Hosts: sizes, Pairs: deref(pairs),
		Dir: dir, NoAnsible: deref(noansible), Log: os.Stdout})
	if res != nil && len(res.Measurements) > 0 {
		res.WriteTable(os.Stdout)
		j, s, werr := res.WriteFiles(dir)
		if werr != nil {
			return werr
		}
		fmt.Printf("written: %s, %s\n", j, s)
	}
	return err
}

// parseSizes reads -hosts=10,50,100.
func parseSizes(s string) ([]int, error) {
	if s == "" {
		return nil, nil
	}
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("-hosts=%s: want host counts separated by commas, such as 10,50,100", s)
		}
		out = append(out, n)
	}
	return out, nil
}
