package web

import (
	"errors"
	"net/http"

	"github.com/digest/digest/internal/subscriber"
	"github.com/digest/digest/internal/token"
)

// subscribePage (GET /subscribe) is the sign-up form.
func (h *Handler) subscribePage(w http.ResponseWriter, r *http.Request) {
	h.render(w, http.StatusOK, "subscribe", h.subscribeView("", "", nil, ""))
}

func (h *Handler) subscribeView(email, name string, topics []string, problem string) view {
	return view{Title: "Subscribe", Action: h.action("/subscribe"), Email: email, Name: name,
		Topics: h.topicBoxes(topics), DoubleOptIn: h.opts.DoubleOptIn, Error: problem}
}

// subscribe (POST /subscribe) records a sign-up and mails the address a
// link to confirm it. The answer is the same whether the address is new,
// pending, active or unsubscribed; an active reader is not mailed again,
// and an address is mailed at most once per Limits.AddressEvery.
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
	ctx := r.Context()
	sub, err := h.opts.Store.Get(ctx, email)
	known := err == nil
	switch {
	case errors.Is(err, ErrNotFound):
	case err != nil:
		h.serverError(w, "sign-up", err)
		return
	case sub.Status == subscriber.StatusActive:
		// Nothing to confirm; topics change on the preferences page.
		h.signedUp(w, email)
		return
	}
	su, err := h.opts.Store.PutSignup(ctx, email, name, topics)
	if err != nil {
		h.serverError(w, "sign-up", err)
		return
	}
	if !h.opts.DoubleOptIn && !known {
		if _, err := h.opts.Store.ConfirmSignup(ctx, su.ID); err != nil {
			h.serverError(w, "sign-up", err)
			return
		}
		h.opts.Logger.Info("web: subscribed without confirmation (double_opt_in is off)", "signup", su.ID)
		h.signedUp(w, email)
		return
	}
	if h.allowAddress(email) {
		tok := token.Confirm(h.opts.Secret, su.ID, su.Email, h.now().Add(ConfirmLifetime))
		n, err := h.notice("confirm", "Confirm your subscription to "+h.opts.ListName,
			mailData{Email: su.Email, Name: su.Name, URL: h.link("/confirm/" + tok)})
		if err != nil {
			h.serverError(w, "sign-up", err)
			return
		}
		h.enqueue(n)
	}
	h.signedUp(w, email)
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
	id, err := token.ParseConfirm(h.opts.Secret, r.PathValue("token"), h.now(), h.confirmLookup(r))
	switch {
	case err == nil:
		return id, true
	case errors.Is(err, token.ErrExpired):
		h.render(w, http.StatusGone, "message", view{Title: "This link has expired",
			Message: []string{"Confirmation links work for 48 hours. Sign up again to get a new one."},
			LinkURL: h.link("/subscribe"), LinkText: "Sign up again"})
	case errors.Is(err, ErrNotFound):
		// The sign-up is gone: confirmed already (most likely: the link was
		// opened twice), or purged. A forged id lands here too; it learns
		// nothing.
		h.usedLink(w)
	case errors.Is(err, token.ErrInvalid):
		h.invalidLink(w, "A confirmation link works once: if you have confirmed already, you are subscribed.")
	default:
		h.serverError(w, "confirm", err)
	}
	return 0, false
}

// usedLink answers a confirmation link whose sign-up is gone.
func (h *Handler) usedLink(w http.ResponseWriter) {
	h.render(w, http.StatusNotFound, "message", view{Title: "This link has been used",
		Message: []string{"If you confirmed your address with it, you are subscribed: there is nothing more to do.",
			"Unconfirmed sign-ups are removed after 7 days; if yours was, sign up again."},
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
	if errors.Is(err, ErrNotFound) {
		h.usedLink(w)
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
