package provisioning

import (
	"context"
	"crypto/rand"
	"fmt"
	"strings"
)

// DefaultBuiltinURL is where the built-in provisioner says the customer's service lives.
const DefaultBuiltinURL = "https://app.kooflow.local"

// Builtin is the local provisioner for `kooflow dev`, demos and the marketplace's dial tests. It creates nothing:
// create answers with appInfo (a front-end URL under BaseURL, an admin user and a fresh initial password), the
// other events succeed at once. It keeps no state: the activity stores the first appInfo it produced and returns
// that one on a retry, which makes the pair idempotent.
type Builtin struct {
	BaseURL string
}

// NewBuiltin returns a built-in provisioner; an empty baseURL selects DefaultBuiltinURL.
func NewBuiltin(baseURL string) *Builtin {
	if baseURL == "" {
		baseURL = DefaultBuiltinURL
	}
	return &Builtin{BaseURL: strings.TrimRight(baseURL, "/")}
}

// Name identifies the provisioner.
func (b *Builtin) Name() string { return "built-in" }

// Apply answers an event.
func (b *Builtin) Apply(ctx context.Context, e Event) (Result, error) {
	if err := e.Validate(); err != nil {
		return Result{}, &Error{Retryable: false, Reason: "invalid provisioning event", Err: err}
	}
	if err := ctx.Err(); err != nil {
		return Result{}, &Error{Retryable: true, Reason: "cancelled", Err: err}
	}
	if e.Type != Create {
		return Result{}, nil
	}
	pw, err := password(16)
	if err != nil {
		return Result{}, &Error{Retryable: true, Reason: "generate the initial password", Err: err}
	}
	base := b.BaseURL + "/t/" + e.InstanceID
	memo := "Created by kooflow's built-in provisioner."
	if e.TestFlag {
		memo = "Dial test: nothing was created."
	}
	return Result{AppInfo: &AppInfo{
		FrontEndURL: base + "/",
		AdminURL:    base + "/admin",
		UserName:    "admin",
		Password:    pw,
		Memo:        memo,
	}}, nil
}

// password returns n characters from an alphabet without look-alikes (no 0/O, 1/l/I), drawn uniformly by
// rejecting the random bytes that would bias the modulo.
func password(n int) (string, error) {
	const alphabet = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
	limit := 256 - 256%len(alphabet)
	out := make([]byte, 0, n)
	buf := make([]byte, 2*n)
	for len(out) < n {
		if _, err := rand.Read(buf); err != nil {
			return "", fmt.Errorf("read random bytes: %w", err)
		}
		for _, c := range buf {
			if int(c) < limit && len(out) < n {
				out = append(out, alphabet[int(c)%len(alphabet)])
			}
		}
	}
	return string(out), nil
}
