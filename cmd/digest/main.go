// Command digest gathers recent articles from feeds and notes, renders one
// digest issue and delivers it to every subscriber. See README.md.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/digest/digest/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := cli.Run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(cli.ExitCode(err))
}
