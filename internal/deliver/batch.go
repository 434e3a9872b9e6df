package deliver

// maxClaim bounds the rows one Claim takes, however many connections.
const maxClaim = 1000

// claimSize is how many rows the claimer takes per Claim: BatchSize, or 8
// per connection when that is more (up to maxClaim), so that with many
// connections a claim comes every few messages per connection rather than
// every one or two. On SQLite a claim holds the one write lock that every
// Record waits for; on Postgres it is a statement of some milliseconds.
// Claimed rows wait in sending under the run's lease: a crash strands
// them until it runs out, never loses them.
func claimSize(o Options) int {
	return max(o.BatchSize, min(8*o.Connections, maxClaim))
}
