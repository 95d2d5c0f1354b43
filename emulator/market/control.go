package market

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// ControlPrefix is where the emulator's own control API lives, beside the marketplace's open APIs on the same
// listener: a scenario runner in another process (`kooflow emulator run` against `kooflow dev`) places its orders
// in the market the seller's worker queries. It is authenticated with the same AK/SK scheme as the open APIs.
const ControlPrefix = "/emulator/v1/"

// Places is what a scenario needs from a market, in-process or remote.
type Places interface {
	PutOrder(ctx context.Context, o Order) error
	PutInstance(ctx context.Context, in Instance) error
	SetQueryFaults(ctx context.Context, f QueryFaults) error
	Stats(ctx context.Context) (Stats, error)
}

// Local adapts an in-process Market to Places.
type Local struct{ M *Market }

func (l Local) PutOrder(_ context.Context, o Order) error { return l.M.PutOrder(o) }
func (l Local) PutInstance(_ context.Context, in Instance) error {
	l.M.PutInstance(in)
	return nil
}
func (l Local) SetQueryFaults(_ context.Context, f QueryFaults) error {
	l.M.SetQueryFaults(f)
	return nil
}
func (l Local) Stats(context.Context) (Stats, error) { return l.M.Stats(), nil }

type controlError struct {
	Error string `json:"error"`
}

func (m *Market) controlHandler() http.Handler {
	mux := http.NewServeMux()
	decode := func(w http.ResponseWriter, r *http.Request, body []byte, v any) bool {
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(v); err != nil {
			writeJSON(w, http.StatusBadRequest, controlError{"invalid JSON: " + err.Error()})
			return false
		}
		return true
	}
	mux.HandleFunc("PUT "+ControlPrefix+"orders", func(w http.ResponseWriter, r *http.Request) {
		body := r.Context().Value(bodyKey{}).([]byte)
		var o Order
		if !decode(w, r, body, &o) {
			return
		}
		if err := m.PutOrder(o); err != nil {
			writeJSON(w, http.StatusConflict, controlError{err.Error()})
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("PUT "+ControlPrefix+"instances", func(w http.ResponseWriter, r *http.Request) {
		var in Instance
		if !decode(w, r, r.Context().Value(bodyKey{}).([]byte), &in) {
			return
		}
		if in.InstanceID == "" {
			writeJSON(w, http.StatusBadRequest, controlError{"instanceId is required"})
			return
		}
		m.PutInstance(in)
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("PUT "+ControlPrefix+"query-faults", func(w http.ResponseWriter, r *http.Request) {
		var f QueryFaults
		if !decode(w, r, r.Context().Value(bodyKey{}).([]byte), &f) {
			return
		}
		if f.ErrorRate < 0 || f.TimeoutRate < 0 || f.ErrorRate+f.TimeoutRate > 1 {
			writeJSON(w, http.StatusBadRequest, controlError{"rates must be non-negative and sum to at most 1"})
			return
		}
		m.SetQueryFaults(f)
		w.WriteHeader(http.StatusNoContent)
	})
	m.usageControlRoutes(mux, decode)
	m.billRoutes(mux, decode)
	mux.HandleFunc("GET "+ControlPrefix+"stats", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, m.Stats())
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			writeJSON(w, http.StatusBadRequest, controlError{"unreadable body"})
			return
		}
		if err := verifyAKSK(r, body, m.opts.AK, m.opts.SK, m.opts.Now(), m.opts.DateSkew); err != nil {
			m.log.Warn("control request refused", "path", r.URL.Path, "reason", err)
			writeJSON(w, http.StatusUnauthorized, controlError{err.Error()})
			return
		}
		mux.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), bodyKey{}, body)))
	})
}

type bodyKey struct{}

// maxControlAnswer bounds what the control API's client reads: a bill detail of a busy month is the largest.
const maxControlAnswer = 256 << 20

// Remote is the control API's client: a market served by another process.
type Remote struct {
	URL    string // the market's base URL, e.g. https://127.0.0.1:8090
	AK, SK string
	HTTP   *http.Client
}

func (c Remote) do(ctx context.Context, method, path string, in, out any) error {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return err
		}
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.URL, "/")+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	SignAKSK(req, body, c.AK, c.SK, time.Now())
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("emulator control %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxControlAnswer))
	if err != nil {
		return fmt.Errorf("emulator control %s %s: read the answer: %w", method, path, err)
	}
	if resp.StatusCode >= 300 {
		var ce controlError
		_ = json.Unmarshal(raw, &ce)
		if ce.Error == "" {
			ce.Error = string(raw)
		}
		return fmt.Errorf("emulator control %s %s: HTTP %d: %s", method, path, resp.StatusCode, ce.Error)
	}
	if rb, ok := out.(*rawBody); ok {
		*rb = raw
		return nil
	}
	if out != nil {
		return json.Unmarshal(raw, out)
	}
	return nil
}

func (c Remote) PutOrder(ctx context.Context, o Order) error {
	return c.do(ctx, http.MethodPut, ControlPrefix+"orders", o, nil)
}
func (c Remote) PutInstance(ctx context.Context, in Instance) error {
	return c.do(ctx, http.MethodPut, ControlPrefix+"instances", in, nil)
}
func (c Remote) SetQueryFaults(ctx context.Context, f QueryFaults) error {
	return c.do(ctx, http.MethodPut, ControlPrefix+"query-faults", f, nil)
}
func (c Remote) Stats(ctx context.Context) (Stats, error) {
	var s Stats
	err := c.do(ctx, http.MethodGet, ControlPrefix+"stats", nil, &s)
	return s, err
}

// SignAKSK signs req with the API gateway's SDK-HMAC-SHA256 scheme over host and X-Sdk-Date, as a seller's SDK
// would (the emulator's own clients use it; kooflow has its own).
func SignAKSK(req *http.Request, body []byte, ak, sk string, now time.Time) {
	date := now.UTC().Format(akskDateLayout)
	req.Header.Set(headerSdkDate, date)
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	sum := sha256.Sum256(body)
	signed := []string{"host", "x-sdk-date"}
	q, _ := url.ParseQuery(req.URL.RawQuery)
	cr := canonicalRequest(req.Method, req.URL.Path, q, map[string]string{"host": host, "x-sdk-date": date}, signed, hex.EncodeToString(sum[:]))
	req.Header.Set("Authorization", fmt.Sprintf("%s Access=%s, SignedHeaders=%s, Signature=%s", akskAlgorithm, ak,
		strings.Join(signed, ";"), hex.EncodeToString(akskSignature(sk, date, cr))))
}

var _ Places = Local{}
var _ Places = Remote{}
