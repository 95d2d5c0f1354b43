package koogallery

import (
	"encoding/base64"
	"encoding/hex"
	"sort"
	"strings"
)

// The two other signature schemes the marketplace uses towards sellers. kooflow serves the V2 basic interface
// only, but V1 listings and the joint-operation (联营) Kit endpoints sign with these, and a gateway for them
// would start from here; both are checked against the vectors in docs/koogallery.md ("Test vectors").

// V1AuthToken is the V1 authToken (docs/koogallery.md, "Other signature schemes"): Base64(HMAC-SHA256(key =
// accessKey + timeStamp, msg = the request's parameters except authToken, URL-decoded, sorted by name, joined as
// name=value&...)).
func V1AuthToken(accessKey string, params map[string]string) string {
	names := make([]string, 0, len(params))
	for k := range params {
		if k != "authToken" {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, k := range names {
		parts[i] = k + "=" + params[k]
	}
	mac := hmacSHA256(accessKey+params["timeStamp"], []byte(strings.Join(parts, "&")))
	return base64.StdEncoding.EncodeToString(mac)
}

// KitSignature is the x-sign header of the V2 Kit interfaces (docs/koogallery.md, "Other signature schemes"):
// like the basic interface's signature but without the inner HMAC, hex(HMAC(accessKey, accessKey + nonce +
// timestamp + payload)), over the canonical payload with numbers left unquoted.
func KitSignature(accessKey string, payload []byte, nonce, timestamp string) string {
	return hex.EncodeToString(hmacSHA256(accessKey, []byte(accessKey+nonce+timestamp), payload))
}
