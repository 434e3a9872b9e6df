package web

import (
	"errors"
	"net/http"

	"github.com/digest/digest/internal/ledger"
	"github.com/digest/digest/internal/subscriber"
	"github.com/digest/digest/internal/token"
)

// prefsSubscriber checks the link's token and loads its subscriber,
// answering when the link is not valid.
func (h *Handler) prefsSubscriber(w http.ResponseWriter, r *http.Request) (subscriber.Subscriber, bool) {
	if !h.tokenAllowed(w, r) {
		return subscriber.Subscriber{}, false
	}
	var sub subscriber.Subscriber
	lookup := func(id int64) (string, error) {
		var err error
		sub, err = h.opts.Store.Subscriber(r.Context(), id)
		return sub.Email, err
	}
	_, err := token.ParsePreferences(h.opts.Secret, r.PathValue("token"), lookup)
	switch {
	case err == nil:
		return sub, true
	case errors.Is(err, token.ErrInvalid), errors.Is(err, ledger.ErrNotFound):
		h.invalidLink(w, r)
	default:
		h.serverError(w, "preferences", err)
	}
	return subscriber.Subscriber{}, false
}

func (h *Handler) prefsView(r *http.Request, sub subscriber.Subscriber, note string) view {
	tok := r.PathValue("token")
	v := view{Title: "Your subscription", Email: sub.Email, Name: sub.Name, Status: sub.Status,
		Topics: h.topicBoxes(sub.Topics), Action: h.action("/p/" + tok),
		FormToken: token.Form(h.opts.Secret, tok, h.now())}
	if note != "" {
		v.Message = []string{note}
	}
	return v
}

// preferencesPage (GET /p/{token}) shows the subscriber's name and topics
// with forms to change them or to leave.
func (h *Handler) preferencesPage(w http.ResponseWriter, r *http.Request) {
	sub, ok := h.prefsSubscriber(w, r)
	if !ok {
		return
	}
	h.render(w, http.StatusOK, "preferences", h.prefsView(r, sub, ""))
}

// savePreferences (POST /p/{token}) saves the name and topics, or
// unsubscribes, or subscribes again. Besides the URL's token it needs the
// form token of a page rendered for that URL in the last 24 hours.
func (h *Handler) savePreferences(w http.ResponseWriter, r *http.Request) {
	sub, ok := h.prefsSubscriber(w, r)
	if !ok || !h.parseForm(w, r) {
		return
	}
	if err := token.CheckForm(h.opts.Secret, r.PathValue("token"), r.PostFormValue("form"), h.now(), formLifetime); err != nil {
		h.render(w, http.StatusForbidden, "message", view{Title: "This form has expired",
			Message: []string{"Nothing was changed. Open the page again and repeat the change."},
			LinkURL: h.link("/p/" + r.PathValue("token")), LinkText: "Open the page again"})
		return
	}
	ctx := r.Context()
	var note string
	var err error
	switch r.PostFormValue("action") {
	case "save":
		topics, terr := h.formTopics(r)
		if terr != nil {
			v := h.prefsView(r, sub, "")
			v.Error = "Please choose among the topics shown."
			h.render(w, http.StatusBadRequest, "preferences", v)
			return
		}
		name := subscriber.CleanName(r.PostFormValue("name"))
		err = h.opts.Store.SetPreferences(ctx, sub.ID, name, topics)
		note = "Saved."
	case "unsubscribe":
		err = h.opts.Store.Unsubscribe(ctx, sub.ID)
		note = "You are unsubscribed: you will get nothing more from " + h.opts.ListName + "."
	case "resubscribe":
		err = h.opts.Store.Resubscribe(ctx, sub.ID)
		note = "Welcome back: you will get the next issue."
	default:
		h.message(w, http.StatusBadRequest, "That did not work", "The form could not be read. Please try again.")
		return
	}
	if err == nil {
		sub, err = h.opts.Store.Subscriber(ctx, sub.ID)
	}
	if err != nil {
		h.serverError(w, "preferences", err)
		return
	}
	h.opts.Logger.Info("web: preferences changed", "subscriber", sub.ID, "action", r.PostFormValue("action"))
	h.render(w, http.StatusOK, "preferences", h.prefsView(r, sub, note))
}
