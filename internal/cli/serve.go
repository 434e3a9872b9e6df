package cli

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/digest/digest/internal/deliver"
	"github.com/digest/digest/internal/web"
)

// purgeEvery is how often `serve` drops unconfirmed sign-ups past
// web.SignupLifetime (also at start).
const purgeEvery = time.Hour

// serve runs the readers' HTTP endpoints on server.listen until ctx ends.
func (e *env) serve(ctx context.Context, args []string) error {
	f := newFlags(e, "serve", false)
	if _, err := f.parse(e, args, 0, 0); err != nil {
		return err
	}
	if err := e.load(ctx); err != nil {
		return err
	}
	defer e.close()
	h, err := e.webHandler(ctx)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", e.cfg.Server.Listen)
	if err != nil {
		return fmt.Errorf("%s: server.listen: %w", e.cfg.Path, err)
	}
	fmt.Fprintf(e.stdout, "Serving the readers' pages on http://%s (links in messages point to %s)\n",
		ln.Addr(), e.cfg.Newsletter.BaseURL)

	purgeCtx, stopPurge := context.WithCancel(ctx)
	bounces, err := e.startBounces(purgeCtx)
	if err != nil {
		stopPurge()
		ln.Close()
		return err
	}
	purged := make(chan struct{})
	go func() {
		defer close(purged)
		e.purgeLoop(purgeCtx)
	}()
	err = web.Serve(ctx, ln, e.withHooks(h))
	stopPurge()
	<-purged
	if berr := bounces.Wait(); berr != nil {
		e.log.Error("bounce intake", "err", berr)
	}
	closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if cerr := h.Close(closeCtx); cerr != nil {
		e.log.Warn("stopping the mail sender", "err", cerr)
	}
	if err != nil {
		return fmt.Errorf("serve %s: %w", ln.Addr(), err)
	}
	fmt.Fprintln(e.stdout, "Stopped.")
	return nil
}

// purgeLoop drops expired sign-ups now and every purgeEvery until ctx ends.
// The daemon runs it beside the same handlers.
func (e *env) purgeLoop(ctx context.Context) {
	t := time.NewTicker(purgeEvery)
	defer t.Stop()
	for {
		n, err := e.store.PurgeSignups(ctx, e.now().Add(-web.SignupLifetime))
		switch {
		case err != nil && ctx.Err() == nil:
			e.log.Warn("purging unconfirmed sign-ups", "err", err)
		case n > 0:
			e.log.Info("purged unconfirmed sign-ups", "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// webHandler wires the readers' endpoints to the store, the message
// composer and the configured transport: `serve` and `daemon` mount it.
// The caller must Close it after the server stopped.
func (e *env) webHandler(ctx context.Context) (*web.Handler, error) {
	comp, err := e.composer(ctx, e.now)
	if err != nil {
		return nil, err
	}
	t, err := e.transport()
	if err != nil {
		return nil, err
	}
	secret, err := e.secret(ctx)
	if err != nil {
		return nil, err
	}
	var topics []web.Topic
	for _, t := range e.cfg.Topics() {
		topics = append(topics, web.Topic{Key: t.Key, Label: t.Label})
	}
	n := e.cfg.Newsletter
	return web.New(web.Options{
		Store: e.store, Mailer: deliver.Notices{Composer: comp, Transport: t}, Secret: secret,
		ListName: n.Name, BaseURL: n.BaseURL, Topics: topics, DoubleOptIn: n.DoubleOptIn,
		Rules: e.addressRules(), ClientIPHeader: e.cfg.Server.ClientIPHeader,
		Now: e.now, Logger: e.log,
	})
}
