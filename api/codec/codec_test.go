package codec_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"

	"github.com/kooflow/kooflow/api/codec"
	"github.com/kooflow/kooflow/internal/config"
	"github.com/kooflow/kooflow/internal/payloadcodec"
	"github.com/kooflow/kooflow/internal/secrets"
)

const uiOrigin = "http://127.0.0.1:8233"

func server(t *testing.T) (*httptest.Server, payloadcodec.Codec) {
	t.Helper()
	keys, err := secrets.Generate("k1")
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Config{ConsoleTokens: "ops:ops-token-0123456789abcdef:read+operate,dash:dash-token-0123456789abcdef:read,cust:cust-token-0123456789abcdef:customer"}
	tokens, err := cfg.ParseConsoleTokens()
	if err != nil {
		t.Fatal(err)
	}
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	c := payloadcodec.Codec{Keys: keys}
	codec.Mount(r, &codec.Handler{Codec: c, Tokens: tokens, Origins: []string{uiOrigin}})
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return srv, c
}

// remote is the Temporal SDK's own client of the remote codec protocol (what the CLI uses), with token.
func remote(endpoint, token string) converter.PayloadCodec {
	return converter.NewRemotePayloadCodec(converter.RemotePayloadCodecOptions{Endpoint: endpoint,
		ModifyRequest: func(r *http.Request) error {
			if token != "" {
				r.Header.Set("Authorization", "Bearer "+token)
			}
			return nil
		}})
}

func TestCodecServerDecodesForTokenHolders(t *testing.T) {
	srv, local := server(t)
	plain, _ := converter.GetDefaultDataConverter().ToPayload(map[string]string{"customerId": "cust-1"})
	sealed, err := local.Encode([]*commonpb.Payload{plain})
	if err != nil {
		t.Fatal(err)
	}
	got, err := remote(srv.URL+"/codec", "dash-token-0123456789abcdef").Decode(sealed)
	if err != nil || len(got) != 1 || string(got[0].Data) != string(plain.Data) {
		t.Fatalf("decode: %v %v", got, err)
	}
	// The path form, for a UI that cannot send the header.
	got, err = remote(srv.URL+"/codec/token/dash-token-0123456789abcdef", "").Decode(sealed)
	if err != nil || string(got[0].Data) != string(plain.Data) {
		t.Fatalf("decode with the token in the path: %v %v", got, err)
	}
	// Encoding (the UI's signal arguments) needs operate; what it returns opens locally.
	enc, err := remote(srv.URL+"/codec", "ops-token-0123456789abcdef").Encode([]*commonpb.Payload{plain})
	if err != nil {
		t.Fatal(err)
	}
	back, err := local.Decode(enc)
	if err != nil || string(back[0].Data) != string(plain.Data) || string(enc[0].Metadata[converter.MetadataEncoding]) != payloadcodec.Encoding {
		t.Fatalf("encode: %v %v", back, err)
	}
	for name, c := range map[string]struct {
		token, op string
		want      string
	}{
		"no token":     {"", "decode", "401"},
		"forged token": {"forged-token-0123456789abcdef", "decode", "401"},
		"wrong scope":  {"cust-token-0123456789abcdef", "decode", "403"},
		"read encodes": {"dash-token-0123456789abcdef", "encode", "403"},
	} {
		var err error
		if c.op == "decode" {
			_, err = remote(srv.URL+"/codec", c.token).Decode(sealed)
		} else {
			_, err = remote(srv.URL+"/codec", c.token).Encode([]*commonpb.Payload{plain})
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want HTTP %s", name, err, c.want)
		}
	}
}

func TestCodecCORS(t *testing.T) {
	srv, _ := server(t)
	preflight := func(origin string) *http.Response {
		req, _ := http.NewRequest(http.MethodOptions, srv.URL+"/codec/decode", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "authorization,content-type,x-namespace")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	r := preflight(uiOrigin)
	if r.StatusCode != http.StatusNoContent || r.Header.Get("Access-Control-Allow-Origin") != uiOrigin ||
		!strings.Contains(r.Header.Get("Access-Control-Allow-Headers"), "X-Namespace") {
		t.Fatalf("preflight from the UI: %d %v", r.StatusCode, r.Header)
	}
	r = preflight("https://evil.example")
	if r.StatusCode != http.StatusForbidden || r.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("preflight from another origin: %d %v", r.StatusCode, r.Header)
	}
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/codec/decode", strings.NewReader(`{"payloads":[]}`))
	req.Header.Set("Origin", uiOrigin)
	req.Header.Set("Authorization", "Bearer dash-token-0123456789abcdef")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Access-Control-Allow-Origin") != uiOrigin {
		t.Fatalf("decode from the UI: %d %v", resp.StatusCode, resp.Header)
	}
}
