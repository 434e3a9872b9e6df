package web

import (
	"context"
	"errors"
	"net/http"

	"github.com/digest/digest/internal/ledger"
	"github.com/digest/digest/internal/subscriber"
	"github.com/digest/digest/internal/token"
)

// unsubscribePage (GET /u/{token}) says which list and address the link
// unsubscribes, with a button that POSTs to the same URL. It changes
// nothing: scanners follow every link in a message.
func (h *Handler) unsubscribePage(w http.ResponseWriter, r *http.Request) {
	if !h.tokenAllowed(w, r) {
		return
	}
	tok := r.PathValue("token")
	id, _, err := token.ParseUnsubscribe(h.opts.Secret, tok, h.subscriberLookup(r))
	if !h.tokenOK(w, r, err, "unsubscribe page") {
		return
	}
	sub, err := h.opts.Store.Subscriber(r.Context(), id)
	if errors.Is(err, ledger.ErrNotFound) {
		h.message(w, http.StatusNotFound, "Not on the list", "This address is no longer on the list: nothing is sent to it.")
		return
	}
	if err != nil {
		h.serverError(w, "unsubscribe page", err)
		return
	}
	if sub.Status == subscriber.StatusUnsubscribed {
		h.render(w, http.StatusOK, "message", view{Title: "You are unsubscribed",
			Message: []string{sub.Email + " gets nothing from " + h.opts.ListName + "."},
			LinkURL: h.prefsURL(sub), LinkText: "Changed your mind? Subscribe again"})
		return
	}
	h.render(w, http.StatusOK, "unsubscribe", view{Title: "Unsubscribe?", Email: sub.Email,
		Action: h.action("/u/" + tok), PrefsURL: h.prefsURL(sub)})
}

// unsubscribe (POST /u/{token}) is RFC 8058's one-click unsubscribe: mail
// providers POST "List-Unsubscribe=One-Click", urlencoded or multipart,
// without cookies, and want a 200 without a redirect. Any POST to a valid
// link unsubscribes (the page's button sends the same body); repeating it
// is harmless.
func (h *Handler) unsubscribe(w http.ResponseWriter, r *http.Request) {
	if !h.tokenAllowed(w, r) {
		return
	}
	tok := r.PathValue("token")
	id, issue, err := token.ParseUnsubscribe(h.opts.Secret, tok, h.subscriberLookup(r))
	if !h.tokenOK(w, r, err, "unsubscribe") {
		return
	}
	// The body says whether a provider's one-click made the POST; it is
	// logged, never required, and a malformed one does not stop the
	// reader's wish.
	oneClick := false
	if readForm(r) == nil {
		oneClick = r.PostFormValue("List-Unsubscribe") == "One-Click"
	}
	err = h.opts.Store.Unsubscribe(r.Context(), id)
	if errors.Is(err, ledger.ErrNotFound) {
		h.message(w, http.StatusOK, "Not on the list", "This address is no longer on the list: nothing is sent to it.")
		return
	}
	if err != nil {
		h.serverError(w, "unsubscribe", err)
		return
	}
	h.opts.Logger.Info("web: unsubscribed", "subscriber", id, "issue", issue, "one_click", oneClick)
	v := view{Title: "You are unsubscribed", Message: []string{"You will get nothing more from " + h.opts.ListName + "."}}
	if sub, err := h.opts.Store.Subscriber(r.Context(), id); err == nil {
		v.Message = []string{sub.Email + " will get nothing more from " + h.opts.ListName + "."}
		v.LinkURL, v.LinkText = h.prefsURL(sub), "Changed your mind? Subscribe again"
	}
	h.render(w, http.StatusOK, "message", v)
}

// requestLinkPage (GET /unsubscribe) is where the archive's web version
// sends a reader: it asks for the address to mail an unsubscribe link to.
func (h *Handler) requestLinkPage(w http.ResponseWriter, r *http.Request) {
	h.render(w, http.StatusOK, "request", view{Title: "Unsubscribe", Action: h.action("/unsubscribe")})
}

// requestLink (POST /unsubscribe) checks the address and hands the
// request to the background worker (see mailLink), answering the same
// either way.
func (h *Handler) requestLink(w http.ResponseWriter, r *http.Request) {
	if !h.parseForm(w, r) {
		return
	}
	raw := r.PostFormValue("email")
	if honeypot(r) {
		h.linkSent(w, raw)
		return
	}
	email, err := h.opts.Rules.NormalizeEmail(raw)
	if err != nil {
		h.render(w, http.StatusBadRequest, "request", view{Title: "Unsubscribe", Action: h.action("/unsubscribe"),
			Email: raw, Error: "That is not an email address we can use: " + trimAddressError(err)})
		return
	}
	if !h.allowClient(w, r) {
		return
	}
	h.enqueue(task{kind: "link", run: func(ctx context.Context) error { return withoutAddress(h.mailLink(ctx, email), email) }})
	h.linkSent(w, email)
}

// mailLink mails an unsubscribe link to the address when it is subscribed.
func (h *Handler) mailLink(ctx context.Context, email string) error {
	sub, err := h.opts.Store.Get(ctx, email)
	switch {
	case errors.Is(err, ledger.ErrNotFound):
		return nil
	case err != nil:
		return err
	case sub.Status != subscriber.StatusActive || !h.allowAddress(sub.Email):
		return nil
	}
	return h.send(ctx, "link", "Your link to unsubscribe from "+h.opts.ListName, mailData{
		Email: sub.Email, Name: sub.Name,
		URL:      h.link("/u/" + token.Unsubscribe(h.opts.Secret, sub.ID, "", sub.Email)),
		PrefsURL: h.prefsURL(sub),
	})
}

func (h *Handler) linkSent(w http.ResponseWriter, email string) {
	h.message(w, http.StatusOK, "Check your inbox",
		"If "+email+" gets "+h.opts.ListName+", we have sent it a link to unsubscribe. It can take a few minutes to arrive.",
		"Nothing changes until the link is used.")
}

// tokenOK answers for a link whose token did not check out and reports
// whether it did: a malformed or forged token and one whose subscriber is
// gone (deleted since, or an id that never was) get the same invalid-link
// answer; a failing store is a server error.
func (h *Handler) tokenOK(w http.ResponseWriter, r *http.Request, err error, what string) bool {
	switch {
	case err == nil:
		return true
	case errors.Is(err, ledger.ErrNotFound), errors.Is(err, token.ErrInvalid):
		h.invalidLink(w, r)
	default:
		h.serverError(w, what, err)
	}
	return false
}

// subscriberLookup gives the address of a subscriber id, to check a token
// bound to it.
func (h *Handler) subscriberLookup(r *http.Request) token.Lookup {
	return func(id int64) (string, error) {
		sub, err := h.opts.Store.Subscriber(r.Context(), id)
		return sub.Email, err
	}
}
