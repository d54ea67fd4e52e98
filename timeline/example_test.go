package timeline_test

import (
	"fmt"
	"strings"

	"github.com/cauldron-go/cauldron/timeline"
)

func Example() {
	report := `{"mode": "apply", "duration_ms": 40, "hosts": [{"host": "web1", "steps": [
		{"play": "tomcat", "step": "file server.xml", "status": "changed", "start_ms": 0, "elapsed_ms": 25}],
		"handlers": [{"play": "tomcat", "handler": "restart", "status": "changed", "start_ms": 30, "elapsed_ms": 10}]}]}`
	rep, err := timeline.Read("deploy.json", strings.NewReader(report))
	if err != nil {
		fmt.Println(err)
		return
	}
	var svg strings.Builder
	if err := timeline.Render(&svg, rep); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(strings.Count(svg.String(), `class="step"`), "step,", strings.Count(svg.String(), `class="handler"`), "handler,",
		strings.Count(svg.String(), `class="wait"`), "wait")
	// Output: 1 step, 1 handler, 1 wait
}
