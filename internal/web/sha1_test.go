package web

import "crypto/sha1" //nolint:gosec // SNS SignatureVersion 1

func sha1Sum(b []byte) []byte { s := sha1.Sum(b); return s[:] }
