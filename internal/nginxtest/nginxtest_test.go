package nginxtest_test

import (
	"net"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/cauldron-go/cauldron/internal/nginxtest"
)

// TestNothingOfNginxListensAfterTheTestThatRanItEnds: nginx's worker outlived a master
// killed alone, still answering on the port (and holding the test process's
// descriptors); the next test on that port would have judged a stale nginx.
func TestNothingOfNginxListensAfterTheTestThatRanItEnds(t *testing.T) {
	nginx, err := exec.LookPath("nginx")
	if err != nil {
		t.Skip("no nginx on this machine")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	site := []byte("server {\n    listen " + strconv.Itoa(port) + ";\n    location / { return 200 \"ok\\n\"; }\n}\n")
	t.Run("nginx serves", func(t *testing.T) {
		nginxtest.Run(t, nginx, site, port)
	})
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	// The kernel may take a moment to close the listening socket of a killed process.
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatalf("%s still accepts connections after the test that ran nginx ended", addr)
		}
	}
}
