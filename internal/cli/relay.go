package cli

import (
	"time"

	"github.com/digest/digest/internal/deliver"
)

// relayDown is the relay part of /healthz while delivery waits for it.
type relayDown struct {
	Status    string    `json:"status"` // "down", or "quota" while a sending cap holds delivery back
	Since     time.Time `json:"since"`
	LastReply string    `json:"last_reply"`
	RetryAt   time.Time `json:"retry_at"`
}

// relayHealth reports the relay when delivery waits for it; nil while it
// answers.
func relayHealth(r *deliver.RelayState) *relayDown {
	if r == nil {
		return nil
	}
	st := r.Status()
	if !st.Down {
		return nil
	}
	h := &relayDown{Status: "down", Since: st.Since, LastReply: st.Reply, RetryAt: st.Retry}
	if st.Quota {
		h.Status = "quota"
	}
	return h
}
