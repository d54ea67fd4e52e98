package transport

import "context"

type overtakeKey struct{}

// WithOvertake marks ctx: the commands run under it need nothing that is queued ahead
// of them on the host (checks made ahead whose results will not be used) to have run
// first. A transport that queues commands on a command channel and has a cheap way to
// run one by itself (an SSH session on the same connection) may then run them that
// way while the channel is busy, instead of behind the queue. The caller's own
// commands are still run one after another: a caller waits for each before the next.
func WithOvertake(ctx context.Context) context.Context {
	return context.WithValue(ctx, overtakeKey{}, true)
}

// Overtakes says whether ctx was marked by WithOvertake.
func Overtakes(ctx context.Context) bool {
	v, _ := ctx.Value(overtakeKey{}).(bool)
	return v
}
