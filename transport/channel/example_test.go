package channel_test

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"

	"github.com/cauldron-go/cauldron/transport"
	"github.com/cauldron-go/cauldron/transport/channel"
)

// A channel over a shell on this machine: the transports do the same over an SSH
// session or a docker exec.
func ExampleOpen() {
	sh := exec.Command("sh", "-c", channel.Loop)
	in, _ := sh.StdinPipe()
	out, _ := sh.StdoutPipe()
	errs, _ := sh.StderrPipe()
	if err := sh.Start(); err != nil {
		fmt.Println(err)
		return
	}
	kill := func(id string) { exec.Command("sh", "-c", channel.KillScript(id)).Run() }
	ch, err := channel.Open(in, out, errs, kill, sh.Wait)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ch.Close()

	ctx := context.Background()
	var stdout bytes.Buffer
	err = ch.Run(ctx, transport.Command{Line: "tr a-z A-Z", Stdin: strings.NewReader("a secret on stdin\n"), Stdout: &stdout})
	fmt.Print(stdout.String(), err, "\n")
	err = ch.Run(ctx, transport.Command{Line: "echo the reason >&2; exit 3"})
	fmt.Println(err)
	// Output:
	// A SECRET ON STDIN
	// <nil>
	// exit status 3: the reason
}
