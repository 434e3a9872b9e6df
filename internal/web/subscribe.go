package web

import (
	"context"
	"errors"
	"net/http"

	"github.com/digest/digest/internal/ledger"
	"github.com/digest/digest/internal/subscriber"
	"github.com/digest/digest/internal/token"
)

// home (GET /) names the list and links to the sign-up form: what someone
// who opens the server's address finds.
func (h *Handler) home(w http.ResponseWriter, r *http.Request) {
	h.render(w, http.StatusOK, "message", view{Title: h.opts.ListName,
		Message: []string{"Sign up to get " + h.opts.ListName + " by mail. " +
			"Every issue links to a page where you can choose what you get, or unsubscribe."},
		LinkURL: h.link("/subscribe"), LinkText: "Subscribe to " + h.opts.ListName})
}

// subscribePage (GET /subscribe) is the sign-up form.
func (h *Handler) subscribePage(w http.ResponseWriter, r *http.Request) {
	h.render(w, http.StatusOK, "subscribe", h.subscribeView("", "", nil, ""))
}

func (h *Handler) subscribeView(email, name string, topics []string, problem string) view {
	return view{Title: "Subscribe", Action: h.action("/subscribe"), Email: email, Name: name,
		Topics: h.topicBoxes(topics), DoubleOptIn: h.opts.DoubleOptIn, Error: problem}
}

// subscribe (POST /subscribe) checks the form and hands the sign-up to the
// background worker (see signup). The answer is the same, and takes the
// same work, whether the address is new, pending, active or unsubscribed.
func (h *Handler) subscribe(w http.ResponseWriter, r *http.Request) {
	if !h.parseForm(w, r) {
		return
	}
	raw, name := r.PostFormValue("email"), subscriber.CleanName(r.PostFormValue("name"))
	if honeypot(r) {
		h.opts.Logger.Debug("web: sign-up with the honeypot filled in: ignored")
		h.signedUp(w, raw)
		return
	}
	topics, terr := h.formTopics(r)
	email, err := h.opts.Rules.NormalizeEmail(raw)
	if err != nil {
		h.render(w, http.StatusBadRequest, "subscribe", h.subscribeView(raw, name, topics,
			"That is not an email address we can use: "+trimAddressError(err)))
		return
	}
	if terr != nil {
		h.render(w, http.StatusBadRequest, "subscribe", h.subscribeView(raw, name, nil, "Please choose among the topics shown."))
		return
	}
	if !h.allowClient(w, r) {
		return
	}
	h.enqueue(task{kind: "sign-up", run: func(ctx context.Context) error {
		return withoutAddress(h.signup(ctx, email, name, topics), email)
	}})
	h.signedUp(w, email)
}

// signup records a sign-up and mails the address a link to confirm it; an
// active reader is not mailed again, and an address is mailed at most once
// per Limits.AddressEvery, the list at most Limits.ConfirmPerHour times an
// hour. The name typed in the form is kept in the sign-up, never put in
// the mail: it becomes the reader's once the address is confirmed.
func (h *Handler) signup(ctx context.Context, email, name string, topics []string) error {
	sub, err := h.opts.Store.Get(ctx, email)
	known := err == nil
	switch {
	case errors.Is(err, ledger.ErrNotFound):
	case err != nil:
		return err
	case sub.Status == subscriber.StatusActive:
		return nil // nothing to confirm; topics change on the preferences page
	}
	su, err := h.opts.Store.PutSignup(ctx, email, name, topics)
	if err != nil {
		return err
	}
	if !h.opts.DoubleOptIn && !known {
		if _, err := h.opts.Store.ConfirmSignup(ctx, su.ID); err != nil {
			return err
		}
		h.opts.Logger.Info("web: subscribed without confirmation (double_opt_in is off)", "signup", su.ID)
		return nil
	}
	if !h.allowAddress(email) || !h.allowConfirm() {
		return nil
	}
	tok := token.Confirm(h.opts.Secret, su.ID, su.Email, h.now().Add(ConfirmLifetime))
	return h.send(ctx, "confirm", "Confirm your subscription to "+h.opts.ListName,
		mailData{Email: su.Email, URL: h.link("/confirm/" + tok)})
}

func (h *Handler) signedUp(w http.ResponseWriter, email string) {
	if !h.opts.DoubleOptIn {
		h.message(w, http.StatusOK, "Thank you",
			email+" will get the next issue of "+h.opts.ListName+".",
			"If the address had unsubscribed before, we have sent it a link to confirm first.")
		return
	}
	h.message(w, http.StatusOK, "Check your inbox",
		"We have sent a link to "+email+". Open it and press the button to confirm your subscription; the link works for 48 hours.",
		"If the address is already subscribed, nothing changes.")
}

// confirmLookup gives the address of a pending sign-up, to check a
// confirmation token against.
func (h *Handler) confirmLookup(r *http.Request) token.Lookup {
	return func(id int64) (string, error) {
		su, err := h.opts.Store.Signup(r.Context(), id)
		return su.Email, err
	}
}

// confirmToken checks the link's token, answering when it is not valid.
func (h *Handler) confirmToken(w http.ResponseWriter, r *http.Request) (int64, bool) {
	if !h.tokenAllowed(w, r) {
		return 0, false
	}
	id, err := token.ParseConfirm(h.opts.Secret, r.PathValue("token"), h.now(), h.confirmLookup(r))
	switch {
	case err == nil:
		return id, true
	case errors.Is(err, token.ErrExpired):
		h.render(w, http.StatusGone, "message", view{Title: "This link has expired",
			Message: []string{"Confirmation links work for 48 hours. Sign up again to get a new one."},
			LinkURL: h.link("/subscribe"), LinkText: "Sign up again"})
	case errors.Is(err, ledger.ErrNotFound), errors.Is(err, token.ErrInvalid):
		// The sign-up is gone (confirmed already: the link was opened
		// twice; or purged), or the token is forged: one answer, so that a
		// forged id learns nothing.
		h.usedLink(w, r)
	default:
		h.serverError(w, "confirm", err)
	}
	return 0, false
}

// usedLink answers a confirmation link that does not check out.
func (h *Handler) usedLink(w http.ResponseWriter, r *http.Request) {
	h.badTokens.allow(clientKey(r, h.opts.ClientIPHeader), h.now())
	h.render(w, http.StatusNotFound, "message", view{Title: "This link is not valid",
		Message: []string{"A confirmation link works once: if you confirmed your address with it, you are subscribed, and there is nothing more to do.",
			"Otherwise check that the whole link was copied from the message. Unconfirmed sign-ups are removed after 7 days; if yours was, sign up again."},
		LinkURL: h.link("/subscribe"), LinkText: "Sign up"})
}

// confirmPage (GET /confirm/{token}) shows a button; only its POST
// confirms, since scanners follow links.
func (h *Handler) confirmPage(w http.ResponseWriter, r *http.Request) {
	id, ok := h.confirmToken(w, r)
	if !ok {
		return
	}
	su, err := h.opts.Store.Signup(r.Context(), id)
	if err != nil {
		h.serverError(w, "confirm page", err)
		return
	}
	h.render(w, http.StatusOK, "confirm", view{Title: "Confirm your subscription", Email: su.Email,
		Action: h.action("/confirm/" + r.PathValue("token"))})
}

// confirm (POST /confirm/{token}) makes the sign-up an active subscriber.
func (h *Handler) confirm(w http.ResponseWriter, r *http.Request) {
	id, ok := h.confirmToken(w, r)
	if !ok {
		return
	}
	sub, err := h.opts.Store.ConfirmSignup(r.Context(), id)
	if errors.Is(err, ledger.ErrNotFound) {
		h.usedLink(w, r)
		return
	}
	if err != nil {
		h.serverError(w, "confirm", err)
		return
	}
	h.opts.Logger.Info("web: sign-up confirmed", "subscriber", sub.ID)
	h.render(w, http.StatusOK, "message", view{Title: "You are subscribed",
		Message: []string{sub.Email + " will get the next issue of " + h.opts.ListName + "."},
		LinkURL: h.prefsURL(sub), LinkText: "Choose what you get"})
}
