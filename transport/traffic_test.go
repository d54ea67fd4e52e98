package transport_test

import (
	"testing"

	"github.com/cauldron-go/cauldron/transport"
)

func TestOverlappingCommandsShareARoundTripAndSequentialOnesDoNot(t *testing.T) {
	tests := []struct {
		name string
		// ops: 'b' begins an operation, 'e' ends the oldest one still running, 'w'
		// waits on the host inside the operations in flight (opens a session).
		ops  string
		want transport.TrafficCounts
	}{
		{"one command", "be", transport.TrafficCounts{Commands: 1, RoundTrips: 1}},
		{"three one after another", "bebebe", transport.TrafficCounts{Commands: 3, RoundTrips: 3}},
		{"three pipelined", "bbbeee", transport.TrafficCounts{Commands: 3, RoundTrips: 1}},
		{"a window of two sliding over four", "bbebebee", transport.TrafficCounts{Commands: 4, RoundTrips: 1}},
		{"two batches", "bbeebbee", transport.TrafficCounts{Commands: 4, RoundTrips: 2}},
		{"a session opened before three pipelined", "bwbbeee", transport.TrafficCounts{Commands: 3, RoundTrips: 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var tr transport.Traffic
			var ends []func()
			for _, op := range tt.ops {
				switch op {
				case 'b':
					ends = append(ends, tr.Begin())
				case 'w':
					tr.Wait()
				default:
					ends[0]()
					ends = ends[1:]
				}
			}
			if got := tr.Counts(); got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}
