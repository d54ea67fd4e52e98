package configs_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/cauldron-go/cauldron/configs"
)

func TestOnlyAWrittenClusterClosesTheConnectionsOfADepartedMember(t *testing.T) {
	for _, r := range []configs.Replication{configs.AsyncReplication, configs.SyncReplication, configs.WrittenReplication} {
		for _, m := range []configs.Membership{configs.Multicast, configs.Static} {
			c := cluster(2)
			c.Replication, c.Membership = r, m
			for _, svc := range configs.NewServerXML(c, c.Nodes[0]).Services {
				ch := svc.Engine.Cluster.Channel
				var names []string
				for _, i := range ch.Interceptors {
					names = append(names, i.ClassName)
				}
				wantSender, wantNames := configs.ClassPooledParallelSender, []string{configs.ClassGaplessOrderInterceptor, configs.ClassGaplessOrderInterceptor, configs.ClassRejoinFailureDetector, configs.ClassMessageDispatch}
				if r == configs.WrittenReplication {
					// Last, next to the transport: it sees the membership's own changes.
					wantSender, wantNames = configs.ClassFreshConnectionsSender, append(wantNames, configs.ClassFreshConnectionsInterceptor)
				}
				if got := ch.Sender.Transport.ClassName; got != wantSender {
					t.Errorf("%s, %s, %s: Transport %s, want %s", r, m, svc.Name, got, wantSender)
				}
				if !slices.Equal(names, wantNames) {
					t.Errorf("%s, %s, %s: interceptors %v, want %v", r, m, svc.Name, names, wantNames)
				}
			}
		}
	}
}

func TestTheFreshConnectionsSenderAndItsInterceptorComeOnlyTogether(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mangle func(ch *configs.Channel)
		want   string
	}{
		{"the interceptor over Tribes' sender", func(ch *configs.Channel) {
			ch.Sender.Transport.ClassName = configs.ClassPooledParallelSender
		}, "Interceptor " + configs.ClassFreshConnectionsInterceptor + " needs the Transport " + configs.ClassFreshConnectionsSender},
		{"the sender without the interceptor", func(ch *configs.Channel) {
			ch.Interceptors = slices.DeleteFunc(ch.Interceptors, func(l configs.Listener) bool {
				return l.ClassName == configs.ClassFreshConnectionsInterceptor
			})
		}, "Transport " + configs.ClassFreshConnectionsSender + " needs the Interceptor " + configs.ClassFreshConnectionsInterceptor},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := cluster(2)
			c.Replication = configs.WrittenReplication
			s := configs.NewServerXML(c, c.Nodes[0])
			if err := s.Validate(); err != nil {
				t.Fatalf("a written cluster's server.xml: %v", err)
			}
			tc.mangle(&s.Services[0].Engine.Cluster.Channel)
			err := s.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), `Service "Catalina"`) {
				t.Errorf("Validate() = %v, want an error about Service Catalina saying %q", err, tc.want)
			}
		})
	}
}
