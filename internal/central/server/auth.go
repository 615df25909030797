package server

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/zmonitor/firmware/internal/central/store"
)

// dummyHash is compared against when the technician does not exist, so the
// answer takes the same time.
var dummyHash = store.HashTechnicianToken("no such technician")

func (s *Server) authed(h func(http.ResponseWriter, *http.Request, store.Technician)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t, err := s.authenticate(r)
		if err != nil {
			s.log.Warn("request refused", "remote", r.RemoteAddr, "path", r.URL.Path, "err", err)
			w.Header().Set("WWW-Authenticate", `Bearer realm="zm-central"`)
			s.writeRefusal(w, err, "")
			return
		}
		h(w, r, t)
	}
}

func (s *Server) authenticate(r *http.Request) (store.Technician, error) {
	auth := r.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(auth, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return store.Technician{}, refuse(Unauthorized, "missing bearer token")
	}
	id, err := store.TechnicianIDOfToken(token)
	if err != nil {
		return store.Technician{}, refuse(Unauthorized, "malformed bearer token")
	}
	t, err := s.st.Technician(r.Context(), id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		store.TokenMatches(dummyHash, token)
		return store.Technician{}, refuse(Unauthorized, "unknown or wrong token")
	case err != nil:
		return store.Technician{}, fmt.Errorf("authenticate: %w", err)
	}
	if !store.TokenMatches(t.TokenHash, token) {
		return store.Technician{}, refuse(Unauthorized, "unknown or wrong token")
	}
	if t.Revoked() {
		return store.Technician{}, refuse(Unauthorized, "technician revoked")
	}
	return t, nil
}
