package sshconn_test

import (
	"context"
	"testing"

	"github.com/cauldron-go/cauldron/transport"
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
