package configs_test

import (
	"encoding/xml"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/cauldron-go/cauldron/configs"
)

func ExampleNewServerXML() {
	c := configs.NewCluster([]configs.Node{
		{Name: "web1", Address: "10.0.0.11", Index: 1},
		{Name: "web2", Address: "10.0.0.12", Index: 2},
	}, "an-ajp-secret")
	s := configs.NewServerXML(c, c.Nodes[1])
	if _, err := s.Render(); err != nil {
		fmt.Println(err)
		return
	}
	for _, svc := range s.Services {
		m := svc.Engine.Cluster.Channel.Membership
		fmt.Printf("%s: jvmRoute %s, AJP %s:%d, group %s:%d, receiver %d\n", svc.Name,
			svc.Engine.JvmRoute, svc.Connectors[1].Address, svc.Connectors[1].Port,
			m.Address, m.Port, svc.Engine.Cluster.Channel.Receiver.Port)
	}
	// Output:
	// Catalina: jvmRoute admin2, AJP 10.0.0.12:8019, group 228.0.0.4:45564, receiver 4000
	// Catalina2: jvmRoute user2, AJP 10.0.0.12:8029, group 228.0.0.5:45564, receiver 4010
}

func TestServerXMLReadsBackAsTheSameModel(t *testing.T) {
	for _, membership := range []configs.Membership{configs.Multicast, configs.Static, configs.NoReplication} {
		for _, n := range []int{2, 3} {
			t.Run(fmt.Sprintf("%s/%d-nodes", membership, n), func(t *testing.T) {
				c := cluster(n)
				c.Membership = membership
				want := configs.NewServerXML(c, c.Nodes[n-1])
				data, err := want.Render()
				if err != nil {
					t.Fatal(err)
				}
				var got configs.ServerXML
				if err := xml.Unmarshal(data, &got); err != nil {
					t.Fatalf("the rendered server.xml is not well-formed XML: %v", err)
				}
				got.XMLName = want.XMLName
				if !reflect.DeepEqual(&got, want) {
					t.Errorf("read back %+v\nwant %+v", got, *want)
				}
			})
		}
	}
}

func TestStaticMembershipListsEveryNodeWithStableIDs(t *testing.T) {
	c := cluster(3)
	c.Membership = configs.Static
	first := configs.NewServerXML(c, c.Nodes[0])
	third := configs.NewServerXML(c, c.Nodes[2])
	for i, svc := range first.Services {
		m := svc.Engine.Cluster.Channel.Membership
		if m.ClassName != configs.ClassStaticMembership {
			t.Fatalf("%s: membership %s", svc.Name, m.ClassName)
		}
		if len(m.Members) != 3 {
			t.Fatalf("%s: %d members, want 3", svc.Name, len(m.Members))
		}
		// Every node must name every member alike, or Tomcat treats them as strangers.
		if !reflect.DeepEqual(m.Members, third.Services[i].Engine.Cluster.Channel.Membership.Members) {
			t.Errorf("%s: web1 and web3 list different members", svc.Name)
		}
		for _, member := range m.Members {
			if member.Port != svc.Engine.Cluster.Channel.Receiver.Port {
				t.Errorf("%s: member %s port %d is not the Receiver's", svc.Name, member.Host, member.Port)
			}
		}
	}
	if a, u := first.Services[0].Engine.Cluster.Channel.Membership.Members[0].UniqueID,
		first.Services[1].Engine.Cluster.Channel.Membership.Members[0].UniqueID; a == u {
		t.Errorf("admin and user channels share uniqueId %s", a)
	}
}

func TestServerXMLValidateNamesEachMistake(t *testing.T) {
	tests := []struct {
		name   string
		break_ func(s *configs.ServerXML)
		want   string
	}{
		{"port out of range", func(s *configs.ServerXML) { s.Services[0].Connectors[0].Port = 70000 }, "not in 1-65535"},
		{"port used twice", func(s *configs.ServerXML) { s.Services[1].Connectors[0].Port = 8080 }, "8080 is also"},
		{"shutdown port on a connector's", func(s *configs.ServerXML) { s.Port = 8019 }, "8019 is also"},
		{"empty jvmRoute", func(s *configs.ServerXML) { s.Services[0].Engine.JvmRoute = "" }, "no jvmRoute"},
		{"jvmRoute used twice", func(s *configs.ServerXML) { s.Services[1].Engine.JvmRoute = "admin1" }, `jvmRoute "admin1" used twice`},
		{"relative docBase", func(s *configs.ServerXML) { s.Services[0].Engine.Host.Contexts[0].DocBase = "mago3d-admin" }, "not an absolute path"},
		{"AJP without secret", func(s *configs.ServerXML) { s.Services[0].Connectors[1].Secret = "" }, "needs a secret"},
		{"AJP secret not required", func(s *configs.ServerXML) { s.Services[0].Connectors[1].SecretRequired = false }, "needs a secret"},
		{"AJP on every address", func(s *configs.ServerXML) { s.Services[0].Connectors[1].Address = "0.0.0.0" }, "private address"},
		{"unknown protocol", func(s *configs.ServerXML) { s.Services[0].Connectors[0].Protocol = "HTTP/2" }, "unknown protocol"},
		{"shared multicast group", func(s *configs.ServerXML) {
			s.Services[1].Engine.Cluster.Channel.Membership.Address = "228.0.0.4"
		}, "sessions would mix"},
		{"shared receiver port", func(s *configs.ServerXML) { s.Services[1].Engine.Cluster.Channel.Receiver.Port = 4000 }, "4000 is also"},
		{"unicast membership address", func(s *configs.ServerXML) {
			s.Services[0].Engine.Cluster.Channel.Membership.Address = "10.0.0.1"
		}, "not a multicast address"},
		{"Service name used twice", func(s *configs.ServerXML) { s.Services[1].Name = "Catalina" }, "name used twice"},
		{"defaultHost is not the Host", func(s *configs.ServerXML) { s.Services[0].Engine.DefaultHost = "example" }, "defaultHost"},
		{"no Service", func(s *configs.ServerXML) { s.Services = nil }, "no Service"},
		{"asynchronous replication without OrderInterceptor", func(s *configs.ServerXML) {
			cl := s.Services[1].Engine.Cluster
			cl.ChannelSendOptions = 8
			cl.Channel.Interceptors = slices.DeleteFunc(cl.Channel.Interceptors, func(l configs.Listener) bool { return l.ClassName == configs.ClassGaplessOrderInterceptor })
		}, "out of order"},
		{"OrderInterceptor below MessageDispatchInterceptor", func(s *configs.ServerXML) {
			ch := &s.Services[0].Engine.Cluster.Channel
			ch.Interceptors = []configs.Listener{
				{ClassName: configs.ClassTcpFailureDetector},
				{ClassName: configs.ClassMessageDispatch},
				{ClassName: configs.ClassOrderInterceptor},
			}
		}, "OrderInterceptor (interceptor 3) must come before MessageDispatchInterceptor (interceptor 2)"},
		{"OrderInterceptor that leaves the asynchronous changes unordered", func(s *configs.ServerXML) {
			ch := &s.Services[0].Engine.Cluster.Channel
			ch.Interceptors = slices.Delete(ch.Interceptors, 0, 1) // the asynchronous bit's
		}, "OrderInterceptor optionFlag=256 leaves the cluster's changes (channelSendOptions=8) unordered"},
		{"OrderInterceptor optionFlag not a number", func(s *configs.ServerXML) {
			s.Services[1].Engine.Cluster.Channel.Interceptors[0].Attrs = []xml.Attr{{Name: xml.Name{Local: "optionFlag"}, Value: "async"}}
		}, `OrderInterceptor optionFlag "async" is not a number`},
		{"OrderInterceptor below TcpFailureDetector", func(s *configs.ServerXML) {
			ch := &s.Services[0].Engine.Cluster.Channel
			ch.Interceptors = []configs.Listener{
				{ClassName: configs.ClassTcpFailureDetector},
				{ClassName: configs.ClassOrderInterceptor},
				{ClassName: configs.ClassMessageDispatch},
			}
		}, "must come before TcpFailureDetector"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := configs.NewServerXML(cluster(2), nodes(2)[0])
			tt.break_(s)
			err := s.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate() = %v, want an error containing %q", err, tt.want)
			}
			if _, err := s.Render(); err == nil {
				t.Fatal("Render renders a file Validate rejects")
			}
		})
	}
}

func TestStaticMembershipValidateNamesEachMistake(t *testing.T) {
	tests := []struct {
		name   string
		break_ func(m *configs.MembershipService, r *configs.Receiver)
		want   string
	}{
		{"no members", func(m *configs.MembershipService, r *configs.Receiver) { m.Members = nil }, "no Member"},
		{"receiver auto", func(m *configs.MembershipService, r *configs.Receiver) { r.Address = "auto" }, "cannot find the local member"},
		{"short uniqueId", func(m *configs.MembershipService, r *configs.Receiver) { m.Members[1].UniqueID = "{1,2,3}" }, "not 16"},
		{"uniqueId with spaces", func(m *configs.MembershipService, r *configs.Receiver) {
			m.Members[1].UniqueID = "{1, 2,3,4,5,6,7,8,9,10,11,12,13,14,15,16}"
		}, "not 16"},
		{"uniqueId byte out of range", func(m *configs.MembershipService, r *configs.Receiver) {
			m.Members[1].UniqueID = "{1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,200}"
		}, "not 16"},
		{"uniqueId twice", func(m *configs.MembershipService, r *configs.Receiver) { m.Members[1].UniqueID = m.Members[0].UniqueID }, "uniqueId used twice"},
		{"bad host", func(m *configs.MembershipService, r *configs.Receiver) { m.Members[1].Host = "a b" }, "not an IP address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := cluster(2)
			c.Membership = configs.Static
			s := configs.NewServerXML(c, c.Nodes[0])
			ch := &s.Services[0].Engine.Cluster.Channel
			tt.break_(&ch.Membership, &ch.Receiver)
			if err := s.Validate(); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate() = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestServerXMLErrorsNeverShowTheSecret(t *testing.T) {
	s := configs.NewServerXML(cluster(2), nodes(2)[0])
	s.Services[0].Connectors[1].Secret = testSecret + "\"<"
	err := s.Validate()
	if err == nil {
		t.Fatal("Validate accepts a secret with a quote and '<'")
	}
	if strings.Contains(err.Error(), testSecret) {
		t.Fatalf("the error shows the secret: %v", err)
	}
}

func TestEveryReplicatingChannelOrdersItsMessagesAboveTheAsyncDispatch(t *testing.T) {
	for _, membership := range []configs.Membership{configs.Multicast, configs.Static} {
		c := cluster(3)
		c.Membership = membership
		for _, n := range c.Nodes {
			for _, svc := range configs.NewServerXML(c, n).Services {
				cl := svc.Engine.Cluster
				var names []string
				for _, i := range cl.Channel.Interceptors {
					names = append(names, i.ClassName)
				}
				want := []string{configs.ClassGaplessOrderInterceptor, configs.ClassGaplessOrderInterceptor, configs.ClassRejoinFailureDetector, configs.ClassMessageDispatch}
				if !reflect.DeepEqual(names, want) {
					t.Errorf("%s, %s, %s: interceptors %v, want %v", membership, n.Name, svc.Name, names, want)
				}
				if cl.ChannelSendOptions != 8 { // the default
					t.Errorf("%s, %s, %s: channelSendOptions %d, want the runbook's 8", membership, n.Name, svc.Name, cl.ChannelSendOptions)
				}
			}
		}
	}
}

func TestEachReplicationModeSetsItsChannelSendOptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		want int
	}{{"sync", 6}, {"async", 8}, {"written", 256}} {
		r, err := configs.ParseReplication(tc.name)
		if err != nil {
			t.Fatal(err)
		}
		c := cluster(2)
		c.Replication = r
		for _, svc := range configs.NewServerXML(c, c.Nodes[0]).Services {
			if got := svc.Engine.Cluster.ChannelSendOptions; got != tc.want {
				t.Errorf("%s: %s: channelSendOptions %d, want %d", tc.name, svc.Name, got, tc.want)
			}
			// Only a written send blocks the request on a full socket buffer.
			ch := svc.Engine.Cluster.Channel
			wantBuf := 0
			if r == configs.WrittenReplication {
				wantBuf = configs.WrittenBuffer
			}
			tx := 0
			for _, a := range ch.Sender.Transport.Attrs {
				if a.Name.Local == "txBufSize" {
					tx, _ = strconv.Atoi(a.Value)
				}
			}
			if ch.Receiver.RxBufSize != wantBuf || tx != wantBuf {
				t.Errorf("%s: %s: rxBufSize %d, txBufSize %d, want %d each", tc.name, svc.Name, ch.Receiver.RxBufSize, tx, wantBuf)
			}
		}
		if r.String() != tc.name {
			t.Errorf("%v.String() = %q", r, r.String())
		}
	}
	if c := cluster(2); c.Replication != configs.AsyncReplication {
		t.Errorf("a new cluster replicates %s, want async", c.Replication)
	}
	if _, err := configs.ParseReplication("eventually"); err == nil || !strings.Contains(err.Error(), "not sync, written or async") {
		t.Errorf("ParseReplication(eventually) = %v", err)
	}
}

func TestEveryModeOrdersBothKindsOfUnacknowledgedChangesSoNodesOfTwoModesUnderstandEachOther(t *testing.T) {
	// A node numbers a message by the OrderInterceptor whose flag it carries, and the
	// receiver takes the number off by its own: nodes of a cluster switched from one
	// mode to another by a rolling restart must have the same. A drained node sends
	// acknowledged (6) changes: no OrderInterceptor may take them, or it acknowledges
	// one it holds for an earlier number.
	var first []configs.Listener
	for _, name := range []string{"async", "written", "sync"} {
		r, err := configs.ParseReplication(name)
		if err != nil {
			t.Fatal(err)
		}
		c := cluster(2)
		c.Replication = r
		s := configs.NewServerXML(c, c.Nodes[0])
		for _, svc := range s.Services {
			var orders []configs.Listener
			for _, l := range svc.Engine.Cluster.Channel.Interceptors {
				if l.ClassName == configs.ClassGaplessOrderInterceptor {
					orders = append(orders, l)
				}
			}
			var flags []string
			for _, o := range orders {
				if len(o.Attrs) != 2 || o.Attrs[0].Name.Local != "optionFlag" ||
					o.Attrs[1].Name.Local != "forwardExpired" || o.Attrs[1].Value != "false" {
					t.Fatalf("%s: %s: OrderInterceptor %v, want an optionFlag and forwardExpired=false only", name, svc.Name, o.Attrs)
				}
				flags = append(flags, o.Attrs[0].Value)
				if f, _ := strconv.Atoi(o.Attrs[0].Value); f == 0 || 6&f == f {
					t.Errorf("%s: %s: OrderInterceptor optionFlag=%d orders the drain's acknowledged changes", name, svc.Name, f)
				}
			}
			if got := strings.Join(flags, ","); got != "8,256" {
				t.Errorf("%s: %s: OrderInterceptor flags %s, want 8,256 (asynchronous and written)", name, svc.Name, got)
			}
			if first == nil {
				first = orders
			} else if !reflect.DeepEqual(orders, first) {
				t.Errorf("%s: %s: OrderInterceptors %v differ from async's %v", name, svc.Name, orders, first)
			}
		}
		if err := s.Validate(); err != nil {
			t.Errorf("%s: Validate() = %v", name, err)
		}
	}
}

func TestAChannelWithoutTheAsyncDispatchNeedsNoOrderInterceptor(t *testing.T) {
	s := configs.NewServerXML(cluster(2), nodes(2)[0])
	for i := range s.Services {
		cl := s.Services[i].Engine.Cluster
		cl.ChannelSendOptions = 6 // synchronous, acknowledged
		cl.Channel.Interceptors = []configs.Listener{{ClassName: configs.ClassTcpFailureDetector}}
	}
	if err := s.Validate(); err != nil {
		t.Fatalf("Validate() = %v, want nil for synchronous replication", err)
	}
}
