package deliver

// ParallelLedger is a Ledger whose Record calls may run side by side, each
// in its own transaction (a database server, where concurrent commits
// share one flush). The engine keeps up to ParallelRecords of them in
// flight (never more than its connections); a plain Ledger gets one at a
// time. Any two outcomes of one recipient are still recorded in order: a
// run makes a second outcome for a row only after it claimed the row
// again, which the first outcome's commit made claimable.
type ParallelLedger interface {
	Ledger
	ParallelRecords() int
}

// recordsAtOnce is how many Record calls the engine keeps in flight for l.
func recordsAtOnce(l Ledger, connections int) int {
	pl, ok := l.(ParallelLedger)
	if !ok {
		return 1
	}
	return max(1, min(pl.ParallelRecords(), connections))
}
