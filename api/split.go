package api

import (
	"encoding/json"
	"net/http"
	"strings"
)

// Split divides the router's routes between two listeners (KOOFLOW_CONSOLE_ADDR): the marketplace's listener
// serves the production interface, the console's serves /console/ and the usage intake (/usage/v1/); both serve
// /healthz and /readyz. A path that belongs to the other listener is answered 404 there, so the console need not
// be reachable from the internet.
func Split(h http.Handler, productionPath string) (market, console http.Handler) {
	health := func(p string) bool { return p == "/healthz" || p == "/readyz" }
	only := func(allowed func(string) bool) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if health(r.URL.Path) || allowed(r.URL.Path) {
				h.ServeHTTP(w, r)
				return
			}
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(http.StatusNotFound)
			_ = json.NewEncoder(w).Encode(map[string]any{"type": "https://kooflow.dev/problems/not-found", "title": "Not Found",
				"status": http.StatusNotFound, "detail": "no such endpoint on this listener: " + r.Method + " " + r.URL.Path, "instance": r.URL.Path})
		})
	}
	market = only(func(p string) bool { return p == productionPath })
	console = only(func(p string) bool { return p == "/console" || strings.HasPrefix(p, "/console/") || isUsagePath(p) })
	return market, console
}
