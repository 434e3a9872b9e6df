package web

import (
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/digest/digest/internal/subscriber"
	"github.com/digest/digest/internal/token"
)

func (h *Handler) now() time.Time { return h.opts.Now() }

// link is the public URL of path, as in the messages.
func (h *Handler) link(path string) string { return h.baseURL + path }

// action is a form's action for path: relative to the host, so that
// form-action 'self' holds behind any proxy, with base_url's path.
func (h *Handler) action(path string) string { return h.basePath + path }

func (h *Handler) prefsURL(sub subscriber.Subscriber) string {
	return h.link("/p/" + token.Preferences(h.opts.Secret, sub.ID, sub.Email))
}

// invalidLink answers a token that is malformed, forged, for another
// purpose or names nobody (any more): the same 404 and the same page for
// all, so that it tells nothing, not even whether the id in it exists. It
// also counts the failure against the client (see tokenAllowed).
func (h *Handler) invalidLink(w http.ResponseWriter, r *http.Request, more ...string) {
	h.badTokens.allow(clientKey(r, h.opts.ClientIPHeader), h.now())
	h.message(w, http.StatusNotFound, "This link is not valid",
		append([]string{"Check that the whole link was copied from the message. " +
			"A link from an old message stops working once its address is no longer on the list: nothing is sent to it then."},
			more...)...)
}

// tokenAllowed reports whether the client may have a link's token checked,
// answering 429 when its links have failed too often lately
// (Limits.BadTokens): guessing tokens, or the ids in them, is slow.
func (h *Handler) tokenAllowed(w http.ResponseWriter, r *http.Request) bool {
	if !h.badTokens.spent(clientKey(r, h.opts.ClientIPHeader), h.now()) {
		return true
	}
	w.Header().Set("Retry-After", strconv.Itoa(int(h.opts.Limits.BadTokenEvery.Seconds()+0.5)))
	h.message(w, http.StatusTooManyRequests, "Too many requests",
		"Too many links from here did not work. Please wait a few minutes before trying again.")
	return false
}

func (h *Handler) serverError(w http.ResponseWriter, what string, err error) {
	h.opts.Logger.Error("web: "+what, "err", err)
	h.message(w, http.StatusInternalServerError, "Something went wrong",
		"Nothing was changed. Please try again in a few minutes.")
}

// parseForm reads an urlencoded or multipart/form-data body into
// r.PostForm. It answers and returns false for a body over the limit or a
// malformed one.
func (h *Handler) parseForm(w http.ResponseWriter, r *http.Request) bool {
	err := readForm(r)
	if err == nil {
		return true
	}
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		h.message(w, http.StatusRequestEntityTooLarge, "That was too much", "The form sent more than this page takes.")
		return false
	}
	h.message(w, http.StatusBadRequest, "That did not work", "The form could not be read. Please try again.")
	return false
}

// readForm fills r.PostForm from an urlencoded or a multipart/form-data
// body. (ParseMultipartForm alone hides ParseForm's errors, a body over
// the limit among them.)
func readForm(r *http.Request) error {
	if err := r.ParseForm(); err != nil {
		return err
	}
	if err := r.ParseMultipartForm(maxBody); err != nil && !errors.Is(err, http.ErrNotMultipart) {
		return err
	}
	return nil
}

// honeypot reports a filled-in hidden field: a bot, not a person.
func honeypot(r *http.Request) bool { return r.PostFormValue("website") != "" }

// allowClient takes one request from the client's budget of mail-causing
// requests, answering 429 when it is spent.
func (h *Handler) allowClient(w http.ResponseWriter, r *http.Request) bool {
	if h.perClient.allow(clientKey(r, h.opts.ClientIPHeader), h.now()) {
		return true
	}
	w.Header().Set("Retry-After", "60")
	h.message(w, http.StatusTooManyRequests, "Too many requests",
		"Please wait a few minutes before trying again.")
	return false
}

// allowAddress reports whether email may be mailed now.
func (h *Handler) allowAddress(email string) bool {
	return h.perAddress.allow(subscriber.EmailKey(email), h.now())
}

// allowConfirm takes one confirmation mail from the list-wide budget,
// logging once when it runs out (and once when it is back).
func (h *Handler) allowConfirm() bool {
	ok := h.confirms.allow("list", h.now())
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case !ok && !h.budgetSpent:
		h.opts.Logger.Warn("web: the hourly budget of confirmation mails is spent: sign-ups are recorded but not mailed",
			"per_hour", h.opts.Limits.ConfirmPerHour)
	case ok && h.budgetSpent:
		h.opts.Logger.Info("web: confirmation mails are sent again")
	}
	h.budgetSpent = !ok
	return ok
}

// topicBoxes are the configured topics, ticked where chosen.
func (h *Handler) topicBoxes(chosen []string) []topicBox {
	var out []topicBox
	for _, t := range h.opts.Topics {
		out = append(out, topicBox{Key: t.Key, Label: t.Label, Checked: slices.Contains(chosen, t.Key)})
	}
	return out
}

// formTopics reads the ticked topics, which must be configured ones.
func (h *Handler) formTopics(r *http.Request) ([]string, error) {
	topics, err := subscriber.NormalizeTopics(r.PostForm["topic"])
	if err != nil {
		return nil, err
	}
	known := make([]string, len(h.opts.Topics))
	for i, t := range h.opts.Topics {
		known[i] = t.Key
	}
	if err := subscriber.CheckTopics(topics, known); err != nil {
		return nil, err
	}
	return topics, nil
}

// trimAddressError is the reason an address was refused, worded for a form.
func trimAddressError(err error) string {
	if inner := errors.Unwrap(err); inner != nil {
		err = inner
	}
	return strings.Replace(err.Error(), "the name column", "the name field", 1) + "."
}
