// Package codec serves the Temporal payload codec over HTTP (POST /codec/encode and /codec/decode, the
// protocol of Temporal's remote codec: a JSON {"payloads": […]} in, the same out), so the Temporal web UI and
// CLI show the payloads internal/payloadcodec sealed, to operators who hold a console token
// (docs/security.md, "Temporal payloads").
//
// Decoding needs the read scope and encoding the operate scope (the UI encodes the arguments of a signal it
// sends). The token comes as "Authorization: Bearer <token>", or, for a UI that cannot send a header, in the
// path: /codec/token/<token>/decode — such an endpoint URL is then as secret as the token. Browsers may call it
// from KOOFLOW_CODEC_CORS_ORIGINS only.
package codec

import (
	"crypto/subtle"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/gin-gonic/gin"
	commonpb "go.temporal.io/api/common/v1"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/kooflow/kooflow/api/httpx"
	"github.com/kooflow/kooflow/internal/config"
	"github.com/kooflow/kooflow/internal/payloadcodec"
)

// MaxBody bounds a request: the UI sends one history event's payloads at a time.
const MaxBody = 4 << 20

// Handler serves the codec endpoints.
type Handler struct {
	Codec   payloadcodec.Codec
	Tokens  []config.ConsoleToken
	Origins []string
}

// Mount adds the codec endpoints to r. Without data keys there is nothing to decode and nothing is mounted.
func Mount(r gin.IRoutes, h *Handler) {
	if h.Codec.Keys == nil {
		return
	}
	for _, p := range []string{"/codec/:op", "/codec/token/:token/:op"} {
		r.POST(p, h.cors, h.serve)
		r.OPTIONS(p, h.cors)
	}
}

// cors answers a preflight and marks an allowed origin's request as readable by it. A request from an origin
// not listed gets no CORS headers, so the browser withholds the answer (the token is still required).
func (h *Handler) cors(c *gin.Context) {
	origin := c.GetHeader("Origin")
	allowed := origin != "" && slices.Contains(h.Origins, strings.TrimRight(origin, "/"))
	if allowed {
		hd := c.Writer.Header()
		hd.Set("Access-Control-Allow-Origin", origin)
		hd.Set("Access-Control-Allow-Credentials", "true")
		hd.Add("Vary", "Origin")
	}
	if c.Request.Method != http.MethodOptions {
		return
	}
	if !allowed {
		httpx.WriteProblem(c, http.StatusForbidden, "this origin may not call the codec (KOOFLOW_CODEC_CORS_ORIGINS)")
		return
	}
	hd := c.Writer.Header()
	hd.Set("Access-Control-Allow-Methods", "POST, OPTIONS")
	hd.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, X-Namespace")
	hd.Set("Access-Control-Max-Age", "600")
	c.AbortWithStatus(http.StatusNoContent)
}

func (h *Handler) serve(c *gin.Context) {
	op := c.Param("op")
	need := config.ScopeRead
	switch op {
	case "decode":
	case "encode":
		need = config.ScopeOperate
	default:
		httpx.WriteProblem(c, http.StatusNotFound, "no such codec operation: "+op+" (encode or decode)")
		return
	}
	tok, ok := strings.CutPrefix(c.GetHeader("Authorization"), "Bearer ")
	if !ok {
		tok = c.Param("token")
	}
	if c.Param("token") != "" {
		// The access log prints the path: keep the token out of it.
		c.Request.URL.Path = "/codec/token/[redacted]/" + op
	}
	var found *config.ConsoleToken
	for i := range h.Tokens {
		if tok != "" && subtle.ConstantTimeCompare([]byte(tok), []byte(h.Tokens[i].Token.Reveal())) == 1 {
			found = &h.Tokens[i]
		}
	}
	if found == nil {
		httpx.Log(c).Warn("codec request refused: no valid console token", "op", op)
		httpx.WriteProblem(c, http.StatusUnauthorized, "authentication failed")
		return
	}
	if !found.Has(need) {
		httpx.WriteProblem(c, http.StatusForbidden, "the token "+found.Name+" lacks the scope \""+string(need)+"\" that "+op+" needs")
		return
	}
	raw, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, MaxBody))
	if err != nil {
		httpx.WriteProblem(c, http.StatusRequestEntityTooLarge, "the request is larger than 4 MiB or could not be read")
		return
	}
	var in commonpb.Payloads
	if err := protojson.Unmarshal(raw, &in); err != nil {
		httpx.WriteProblem(c, http.StatusBadRequest, "the body must be {\"payloads\": [...]}: "+err.Error())
		return
	}
	var out []*commonpb.Payload
	if op == "encode" {
		out, err = h.Codec.Encode(in.Payloads)
	} else {
		out, err = h.Codec.Decode(in.Payloads)
	}
	if err != nil {
		httpx.Log(c).Warn("codec request failed", "op", op, "actor", found.Name, "err", err)
		httpx.WriteProblem(c, http.StatusBadRequest, err.Error())
		return
	}
	body, err := protojson.Marshal(&commonpb.Payloads{Payloads: out})
	if err != nil {
		httpx.WriteProblem(c, http.StatusInternalServerError, "the payloads could not be encoded")
		return
	}
	httpx.Log(c).Debug("codec", "op", op, "actor", found.Name, "payloads", len(out))
	c.Data(http.StatusOK, "application/json", body)
}
