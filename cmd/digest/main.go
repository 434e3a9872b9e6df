// Command digest gathers recent articles from feeds and notes, renders one
// digest issue and delivers it to every subscriber. See README.md.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/digest/digest/internal/cli"
)

// The first SIGINT or SIGTERM cancels the context: the command stops taking
// work, finishes what is in flight and exits with its usual code (the daemon
// exits 0). A second one exits at once; the ledger keeps a crash from losing
// anyone, at the price of repeating the messages in flight. SIGHUP is left
// to the daemon, which reloads its configuration on it; a one-shot command
// keeps the default (a hang-up ends it).
func main() {
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sigs
		cancel()
		s := <-sigs
		fmt.Fprintf(os.Stderr, "digest: a second signal (%v): exiting at once, without waiting for what is in flight\n", s)
		os.Exit(cli.ExitFailed)
	}()
	err := cli.Run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	signal.Stop(sigs)
	cancel()
	os.Exit(cli.ExitCode(err))
}
