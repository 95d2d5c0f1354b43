package usageclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// Client posts usage to one kooflow deployment.
type Client struct {
	// BaseURL is kooflow's console address, e.g. https://kooflow.example.com (the intake is at /usage/v1/records).
	BaseURL string
	// Token is a console token holding the scope "usage" (KOOFLOW_CONSOLE_TOKENS).
	Token string
	// HTTPClient sends the requests; nil means a client with a 30 s timeout.
	HTTPClient *http.Client
}

// Problem is kooflow's refusal of a whole call (HTTP 4xx/5xx, RFC 9457 problem details). A 503 stored nothing
// of the batch: send it again as it is.
type Problem struct {
	Status int    `json:"status"`
	Title  string `json:"title"`
	Detail string `json:"detail"`
}

func (p *Problem) Error() string {
	return fmt.Sprintf("usage intake: HTTP %d %s: %s", p.Status, p.Title, p.Detail)
}

// Retryable says whether the same batch may succeed when sent again unchanged.
func (p *Problem) Retryable() bool {
	return p.Status == http.StatusServiceUnavailable || p.Status == http.StatusTooManyRequests || p.Status >= 500
}

var defaultHTTP = &http.Client{Timeout: 30 * time.Second}

// Send posts one batch of 1 to MaxBatch records and returns the answer per record. Records the answer marks
// refused were not stored; accepted and duplicate ones are stored (once). On a transport error or a retryable
// Problem, send the same batch again: records already stored come back as duplicates.
func (c *Client) Send(ctx context.Context, records []Record) (*Response, error) {
	if len(records) == 0 || len(records) > MaxBatch {
		return nil, fmt.Errorf("usage intake: %d records; send 1 to %d per call", len(records), MaxBatch)
	}
	body, err := json.Marshal(Request{Records: records})
	if err != nil {
		return nil, fmt.Errorf("usage intake: encode the batch: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(c.BaseURL, "/")+"/usage/v1/records", bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("usage intake: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+c.Token)
	hc := c.HTTPClient
	if hc == nil {
		hc = defaultHTTP
	}
	res, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("usage intake: send %d records: %w", len(records), err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 8<<20))
	if err != nil {
		return nil, fmt.Errorf("usage intake: read the answer (HTTP %d): %w", res.StatusCode, err)
	}
	if res.StatusCode != http.StatusOK {
		p := &Problem{Status: res.StatusCode}
		if json.Unmarshal(b, p) != nil || p.Detail == "" {
			p.Detail = strings.TrimSpace(string(b[:min(len(b), 512)]))
		}
		p.Status = res.StatusCode
		return nil, p
	}
	var out Response
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("usage intake: the answer is not a usage response: %w", err)
	}
	if len(out.Results) != len(records) {
		return nil, errors.New("usage intake: the answer does not hold one result per record")
	}
	return &out, nil
}
