package preview_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/digest/digest/internal/preview"
)

// BenchmarkRebuild measures one rebuild after an edit: the notes read,
// selection, the templates parsed and rendered, the sample reader's
// message built and taken apart.
func BenchmarkRebuild(b *testing.B) {
	s := newServer(b, newFixture(b), preview.Options{})
	for b.Loop() {
		if err := s.Rebuild(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPage measures serving the page of a build, the reader's
// message made once and reused.
func BenchmarkPage(b *testing.B) {
	s := newServer(b, newFixture(b), preview.Options{})
	if err := s.Rebuild(context.Background()); err != nil {
		b.Fatal(err)
	}
	h := s.Handler()
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "http://127.0.0.1:8080/", nil))
		if rec.Code != http.StatusOK {
			b.Fatal(rec.Code)
		}
	}
}
