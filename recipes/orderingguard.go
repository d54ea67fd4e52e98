package recipes

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/cauldron-go/cauldron/configs"
	"github.com/cauldron-go/cauldron/shell"
	"github.com/cauldron-go/cauldron/steps"
	"github.com/cauldron-go/cauldron/transport"
)

// orderingGuard is the step that writes server.xml, refusing to when the Tomcat running
// on the host orders its session changes so that nodes started with the new file could
// not understand it: a node numbers a change by the OrderInterceptor of its bit and the
// receiver takes the number off by its own (configs.OrderedSendOptions). Since session
// 8 every node carries both; a node deployed earlier carries one, its mode's, and a
// switch to the other mode in the same rolling restart stopped at its joined gate with
// the first node left out and no session state. Checked only when the file would
// change, so a converged run pays nothing for it.
type orderingGuard struct {
	steps.Step
	path string
	unit string
	want configs.Replication
}

func (g orderingGuard) Validate() error { return steps.Validate(g.Step) }

// Unwrap returns the server.xml step (its paths are read ahead with the others).
func (g orderingGuard) Unwrap() steps.Step { return g.Step }

func (g orderingGuard) Check(ctx context.Context, c transport.Conn) (*steps.Change, error) {
	ch, err := g.Step.Check(ctx, c)
	if err != nil || ch == nil {
		return ch, err
	}
	out, err := transport.Output(ctx, c, "cat -- "+shell.Quote(g.path)+" 2>/dev/null; echo; systemctl is-active -- "+shell.Quote(g.unit)+" || true")
	if err != nil {
		return nil, fmt.Errorf("read the running server.xml: %w", err)
	}
	out = strings.TrimRight(out, "\n")
	i := strings.LastIndexByte(out, '\n')
	if i < 0 || strings.TrimSpace(out[i+1:]) != "active" {
		return ch, nil // no Tomcat runs: nothing to misunderstand
	}
	if problem := OrderingMismatch(out[:i], g.want); problem != "" {
		return nil, fmt.Errorf("%s: %s; the rolling restart would stop at its joined gate. Deploy once more with the running mode first (session_replication: %s), then switch; or stop every Tomcat of the cluster and deploy", g.path, problem, runningMode(out[:i]))
	}
	return ch, nil
}

var (
	xmlComment       = regexp.MustCompile(`(?s)<!--.*?-->`)
	orderInterceptor = regexp.MustCompile(`<Interceptor[^>]*OrderInterceptor"[^>]*>`)
	optionFlagAttr   = regexp.MustCompile(`optionFlag="([0-9]+)"`)
	sendOptionsAttr  = regexp.MustCompile(`channelSendOptions="([0-9]+)"`)
)

// OrderingMismatch says why Tomcat nodes running the server.xml serverXML could not
// understand the session changes of nodes started with session replication want, or
// "" when they can: they take the ordering number off the changes want sends without
// an acknowledgement, and the new nodes, which order both kinds, take it off theirs. A
// file without a session cluster has no peer to misunderstand.
func OrderingMismatch(serverXML string, want configs.Replication) string {
	x := xmlComment.ReplaceAllString(serverXML, "")
	if !strings.Contains(x, "SimpleTcpCluster") {
		return ""
	}
	var flags []int
	for _, el := range orderInterceptor.FindAllString(x, -1) {
		flag := 0 // Tomcat's default: every message
		if m := optionFlagAttr.FindStringSubmatch(el); m != nil {
			flag, _ = strconv.Atoi(m[1])
		}
		flags = append(flags, flag)
	}
	if len(flags) == 0 {
		return "the running cluster has no OrderInterceptor and would not take the ordering number off the new nodes' changes"
	}
	if slices.Contains(flags, 0) {
		return ""
	}
	bit := 0
	switch want {
	case configs.AsyncReplication, configs.WrittenReplication:
		bit = want.ChannelSendOptions()
	}
	if bit != 0 && !slices.Contains(flags, bit) {
		return fmt.Sprintf("the running cluster orders only optionFlag=%s (a cauldron before session 8) and would not take the ordering number off %s replication's changes (%d)", joinInts(flags), want, bit)
	}
	// The new nodes order both kinds: they understand whatever the running ones send.
	return ""
}

// runningMode is the session replication the running server.xml says, by name.
func runningMode(serverXML string) string {
	m := sendOptionsAttr.FindStringSubmatch(xmlComment.ReplaceAllString(serverXML, ""))
	if m == nil {
		return "async"
	}
	for _, r := range []configs.Replication{configs.AsyncReplication, configs.SyncReplication, configs.WrittenReplication} {
		if strconv.Itoa(r.ChannelSendOptions()) == m[1] {
			return r.String()
		}
	}
	return "channelSendOptions " + m[1]
}

func joinInts(n []int) string {
	s := make([]string, len(n))
	for i, v := range n {
		s[i] = strconv.Itoa(v)
	}
	return strings.Join(s, ",")
}
