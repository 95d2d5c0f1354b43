package gateway

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/kooflow/kooflow/api/httpx"
	"github.com/kooflow/kooflow/internal/store"
)

// TestMessageListRefusesForeignCursors: a page token this server did not issue is answered 400 with a problem
// document naming the cursor, before the message log is read (the handler here has none).
func TestMessageListRefusesForeignCursors(t *testing.T) {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.Use(httpx.RequestContext(slog.New(slog.NewTextHandler(io.Discard, nil))))
	r.GET("/koogallery/messages", listMessages(nil))
	srv := httptest.NewServer(r)
	defer srv.Close()

	for name, token := range map[string]string{
		"not base64":       "garbage!!",
		"not JSON":         "bm90IGpzb24",
		"JSON null":        "bnVsbA",
		"another position": store.EncodeCursor(map[string]any{"x": 1}),
		"no message id":    store.EncodeCursor(store.MessageCursor{Failed: true, ReceivedAt: time.Now()}),
		"trailing data":    base64.RawURLEncoding.EncodeToString([]byte(`{"f":true,"t":"2026-11-29T08:00:00Z","i":7}}`)),
	} {
		t.Run(name, func(t *testing.T) {
			resp, err := http.Get(srv.URL + "/koogallery/messages?cursor=" + url.QueryEscape(token))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("HTTP %d, want 400", resp.StatusCode)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
				t.Fatalf("content type %q", ct)
			}
			var p httpx.Problem
			if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
				t.Fatal(err)
			}
			want := []httpx.FieldError{{Field: "cursor", Detail: "the cursor is not one this server issued"}}
			if p.Status != http.StatusBadRequest || p.Detail != "the message filter is invalid" ||
				len(p.Errors) != 1 || p.Errors[0] != want[0] {
				t.Fatalf("problem %+v, want detail %q and errors %+v", p, "the message filter is invalid", want)
			}
		})
	}
}
