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
					// The reset first, above the failure detector: it acts on a member found
					// gone. The fresh connections last, next to the transport: it sees the
					// membership's own changes.
					wantSender = configs.ClassFreshConnectionsSender
					wantNames = append(append([]string{configs.ClassResetOnDepartureInterceptor}, wantNames...), configs.ClassFreshConnectionsInterceptor)
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

func TestTheFreshConnectionsSenderAndItsInterceptorsComeOnlyTogetherAndInTheirPlaces(t *testing.T) {
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
		{"the reset over Tribes' sender", func(ch *configs.Channel) {
			ch.Sender.Transport.ClassName = configs.ClassPooledParallelSender
			ch.Interceptors = slices.DeleteFunc(ch.Interceptors, func(l configs.Listener) bool {
				return l.ClassName == configs.ClassFreshConnectionsInterceptor
			})
		}, "Interceptor " + configs.ClassResetOnDepartureInterceptor + " needs the Transport " + configs.ClassFreshConnectionsSender},
		{"the reset below the failure detector", func(ch *configs.Channel) {
			reset := ch.Interceptors[0]
			ch.Interceptors = append(slices.Clone(ch.Interceptors[1:4]), append([]configs.Listener{reset}, ch.Interceptors[4:]...)...)
		}, "Interceptor " + configs.ClassResetOnDepartureInterceptor + " (interceptor 4) must come before the failure detector (interceptor 3)"},
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
