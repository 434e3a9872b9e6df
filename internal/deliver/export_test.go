package deliver

// WithoutPipelining makes s send MAIL, RCPT and DATA one by one even though
// the test server offers PIPELINING, so that both paths are tested.
func WithoutPipelining(s *SMTP) { s.noPipelining = true }
