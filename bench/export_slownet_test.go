package bench

import "time"

// PacketQueue exports the slow network's queue to the tests.
type PacketQueue = packetQueue

// OpenPacketQueue is openPacketQueue, for the tests.
func OpenPacketQueue(nsPath string, num uint16, delay time.Duration, loss float64) (*PacketQueue, error) {
	return openPacketQueue(nsPath, num, delay, loss)
}

// Counts are the packets q saw and dropped.
func (q *PacketQueue) Counts() (packets, dropped int64) { return q.packets.Load(), q.dropped.Load() }
