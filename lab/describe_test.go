package lab_test

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"github.com/cauldron-go/cauldron/lab"
)

func ExampleDescribe() {
	l, err := lab.Describe(lab.Options{WebNodes: 3, StateDir: "/tmp/lab-state"})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(l.Network, l.Subnet, "haproxy on", l.HTTPPort, l.AdminPort)
	for _, h := range l.Hosts {
		fmt.Println(h.Name, h.Container, h.Address, h.SSHAddr(), h.Groups, h.Publish)
	}
	// Output:
	// cauldron-lab 172.29.10.0/24 haproxy on 8080 9090
	// db cauldron-db 172.29.10.10 127.0.0.1:2210 [db] [127.0.0.1:2210:22]
	// haproxy cauldron-haproxy 172.29.10.20 127.0.0.1:2220 [haproxy] [127.0.0.1:2220:22 127.0.0.1:8080:80 127.0.0.1:9090:9090]
	// web1 cauldron-web1 172.29.10.31 127.0.0.1:2231 [tomcat web] [127.0.0.1:2231:22]
	// web2 cauldron-web2 172.29.10.32 127.0.0.1:2232 [tomcat web] [127.0.0.1:2232:22]
	// web3 cauldron-web3 172.29.10.33 127.0.0.1:2233 [tomcat web] [127.0.0.1:2233:22]
}

func TestDescribeDerivesNamesAddressesAndPortsFromTheOptions(t *testing.T) {
	l, err := lab.Describe(lab.Options{Name: "cauldron-test", Subnet: "172.29.20.0/24", PortOffset: 100, StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, h := range l.Hosts {
		got = append(got, fmt.Sprintf("%s %s %d", h.Container, h.Address, h.SSHPort))
	}
	want := "cauldron-test-db 172.29.20.10 2310|cauldron-test-haproxy 172.29.20.20 2320|" +
		"cauldron-test-web1 172.29.20.31 2331|cauldron-test-web2 172.29.20.32 2332"
	if strings.Join(got, "|") != want {
		t.Errorf("hosts %s, want %s", strings.Join(got, "|"), want)
	}
	if l.Network != "cauldron-test-lab" || l.HTTPPort != 8180 || l.AdminPort != 9190 {
		t.Errorf("network %s, ports %d %d", l.Network, l.HTTPPort, l.AdminPort)
	}
}

func TestDescribeRefusesOptionsItCannotHonour(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    lab.Options
		want string
	}{
		{"a subnet that is no network", lab.Options{Subnet: "172.29.10.0"}, `lab subnet "172.29.10.0"`},
		{"a subnet too small for the plan", lab.Options{Subnet: "172.29.10.0/28"}, "want an IPv4 network of /24 or larger"},
		{"an IPv6 subnet", lab.Options{Subnet: "fd00::/64"}, "want an IPv4 network"},
		{"more web nodes than addresses", lab.Options{WebNodes: 4}, "lab web nodes 4: want 1 to 3"},
		{"a name docker would not take", lab.Options{Name: "Cauldron Lab"}, `lab name "Cauldron Lab"`},
		{"ports past 65535", lab.Options{PortOffset: 60000}, "lab port offset 60000 is out of range"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.o.StateDir = t.TempDir()
			_, err := lab.Describe(tc.o)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestSHA512CryptMatchesTheReferenceAndOpenSSL(t *testing.T) {
	// The first case is the test vector of the scheme's specification.
	cases := []struct{ password, salt, want string }{
		{"Hello world!", "saltstring", "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1"},
		{"a", "abc", ""},
		{"a password that is longer than sixty-four bytes, to cover the repeat of digests ...", "0123456789abcdef", ""},
		{"short", "toolongsaltforsha512cryptX", ""},
		{"ünïcödé \t$6$", "./AZaz09", ""},
	}
	_, errOpenSSL := exec.LookPath("openssl")
	for _, tc := range cases {
		got, err := lab.SHA512Crypt(tc.password, tc.salt)
		if err != nil {
			t.Fatal(err)
		}
		want := tc.want
		if want == "" {
			if errOpenSSL != nil {
				t.Skip("openssl is not installed")
			}
			cmd := exec.Command("openssl", "passwd", "-6", "-salt", tc.salt, "-stdin")
			cmd.Stdin = strings.NewReader(tc.password + "\n")
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("openssl passwd: %v", err)
			}
			want = strings.TrimSpace(string(out))
		}
		if got != want {
			t.Errorf("SHA512Crypt(%q, %q) = %s, want %s", tc.password, tc.salt, got, want)
		}
	}
	if _, err := lab.SHA512Crypt("x", "bad salt"); err == nil {
		t.Errorf("a salt with a space was taken")
	}
}
