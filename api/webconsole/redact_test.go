package webconsole

import (
	"strings"
	"testing"
)

func TestMessagePagesRedactCredentials(t *testing.T) {
	body := []byte(`{"resultCode":"000000","appInfo":{"userName":"admin","password":"s3cret!","frontEndUrl":"https://x"},
		"clientSecret":"abc","items":[{"accessToken":"tok"}],"instanceId":"i-1"}`)
	out := redactBody(body)
	for _, leaked := range []string{"s3cret!", `"abc"`, `"tok"`} {
		if strings.Contains(out, leaked) {
			t.Errorf("the shown body leaks %s:\n%s", leaked, out)
		}
	}
	for _, kept := range []string{"admin", "https://x", "i-1", "000000"} {
		if !strings.Contains(out, kept) {
			t.Errorf("the shown body lost %s:\n%s", kept, out)
		}
	}
	if got := redactBody([]byte("not json")); got != "not json" {
		t.Errorf("a body that is not JSON shows as %q", got)
	}
	if redactHeader("Authorization", "Bearer x") != "[redacted]" || redactHeader("Content-Type", "application/json") != "application/json" {
		t.Error("headers are redacted wrongly")
	}
}
