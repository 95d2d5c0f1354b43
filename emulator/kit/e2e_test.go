package kit_test

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/shopspring/decimal"

	"github.com/kooflow/kooflow/api/sso"
	"github.com/kooflow/kooflow/emulator/kit"
	"github.com/kooflow/kooflow/emulator/market"
	"github.com/kooflow/kooflow/emulator/sign"
	"github.com/kooflow/kooflow/internal/config"
	kitkey "github.com/kooflow/kooflow/internal/kit"
	"github.com/kooflow/kooflow/internal/testenv"
	"github.com/kooflow/kooflow/internal/teststack"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const (
	accessKey = "kit-e2e-access-key-0123456789"
	appURL    = "https://app.seller.example/"
	ssoKey    = "kit-e2e-sso-signing-key-0123456789abcdef"
)

// TestJointOperationEndToEnd: the emulator plays the marketplace and the unified-login auth centre against a
// real kooflow (router, worker, PostgreSQL, Temporal): purchase → tenantSync → applicationSync → authSync with
// 500 users → login of one of them reaches the application with a verified assertion → the user is removed →
// login refused → release → login refused.
func TestJointOperationEndToEnd(t *testing.T) {
	ctx := context.Background()
	kp, err := kitkey.GenerateKey(kitkey.MinKeyBits)
	if err != nil {
		t.Fatal(err)
	}
	// The marketplace only has the public key the seller uploaded (Base64 X.509).
	der, _ := base64.StdEncoding.DecodeString(kp.PublicBase64)
	pubAny, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		t.Fatal(err)
	}
	auth := &kit.AuthCentre{Tenant: "tenant-e2e", ClientID: "client-e2e", ClientSecret: "s3cret-e2e"}
	authSrv := httptest.NewServer(auth)
	t.Cleanup(authSrv.Close)

	cfg, m, _ := teststack.WithMarket(t, teststack.Keys{AccessKey: accessKey, MarketAK: "KITE2EAK00000000000", MarketSK: "kit-e2e-market-sk-0123456789",
		ConsoleToken: "kit-e2e-console-token"}, market.Options{}, map[string]string{
		config.EnvKitPrivateKey: kp.PrivatePEM,
		config.EnvSSOAppURL:     appURL,
		config.EnvSSOKey:        ssoKey,
	})
	st := teststack.Start(t, cfg, teststack.Options{})
	auth.Callback = st.URL + "/sso/callback"

	// Purchase.
	orderID := testenv.Unique("CSJO")
	line := orderID + "-000001"
	if err := m.PutOrder(market.Order{OrderID: orderID, OrderType: "NEW", CreateTime: time.Now().UTC(),
		Lines: []market.Line{{OrderLineID: line, ChargingMode: market.ChargingOneTime, ProductID: "JO-PRODUCT", SKUCode: "jo-1",
			LinearValue: 1, ProductName: "joint-operation product", ListAmount: decimal.RequireFromString("99"),
			PaidAmount: decimal.RequireFromString("99")}}}); err != nil {
		t.Fatal(err)
	}
	instanceID := production(t, st.URL, map[string]string{"activity": "newInstance", "orderId": orderID, "orderLineId": line,
		"businessId": "b-" + orderID}).InstanceID
	if instanceID == "" {
		t.Fatal("no instanceId")
	}

	syncer := &kit.Syncer{BaseURL: st.URL + config.DefaultKitPath, AccessKey: accessKey, SellerKey: pubAny.(*rsa.PublicKey), Attempts: 40}
	ts := kit.TimeStamp(time.Now())
	send := func(call string, body map[string]any) {
		t.Helper()
		a, err := syncer.Send(ctx, call, body)
		if err != nil || a.ResultCode != "000000" {
			t.Fatalf("%s: %+v, %v", call, a, err)
		}
	}
	send("tenantSync", map[string]any{"instanceId": instanceID, "orderId": orderID, "tenantId": auth.Tenant, "tenantCode": "acme",
		"name": "Acme", "domainName": authSrv.URL, "flag": 1, "testFlag": 0, "timeStamp": ts})
	secret, err := kit.EncryptSecret(syncer.SellerKey, auth.ClientSecret)
	if err != nil {
		t.Fatal(err)
	}
	send("applicationSync", map[string]any{"instanceId": instanceID, "tenantId": auth.Tenant, "appId": "app-e2e",
		"clientId": auth.ClientID, "clientSecret": secret, "flag": 1, "testFlag": 0, "timeStamp": ts})
	users := make([]map[string]string, 500)
	for i := range users {
		name := fmt.Sprintf("user%03d", i)
		users[i] = map[string]string{"userName": name, "name": "User " + name, "orgCode": "hq", "role": "user", "enable": "true"}
		auth.AddUser(kit.User{UserName: name, Name: "User " + name, Role: "user"})
	}
	list, _ := json.Marshal(users)
	send("authSync", map[string]any{"instanceId": instanceID, "tenantId": auth.Tenant, "appId": "app-e2e", "userList": string(list),
		"currentSyncTime": ts, "flag": 1, "testFlag": 0, "timeStamp": ts})

	// user042 logs in through the auth centre's form and reaches the application.
	loc, status, body := login(t, authSrv.URL, "user042")
	if status != http.StatusSeeOther || !strings.HasPrefix(loc, appURL+"#assertion=") {
		t.Fatalf("login: HTTP %d %q %s", status, loc, body)
	}
	raw, _ := url.QueryUnescape(strings.TrimPrefix(loc, appURL+"#assertion="))
	var claims sso.Claims
	if _, err := jwt.ParseWithClaims(raw, &claims, func(*jwt.Token) (any, error) { return []byte(ssoKey), nil },
		jwt.WithValidMethods([]string{"HS256"}), jwt.WithAudience(appURL), jwt.WithIssuer(sso.Issuer)); err != nil {
		t.Fatalf("assertion: %v", err)
	}
	if claims.Subject != "user042" || claims.Tenant != auth.Tenant || claims.Instance != instanceID || claims.Role != "user" {
		t.Fatalf("claims %+v", claims)
	}

	// The user is removed; the next login is refused.
	send("authSync", map[string]any{"instanceId": instanceID, "tenantId": auth.Tenant, "appId": "app-e2e",
		"userList": []map[string]string{{"userName": "user042"}}, "currentSyncTime": kit.TimeStamp(time.Now()), "flag": 0, "testFlag": 0,
		"timeStamp": kit.TimeStamp(time.Now().Add(time.Second))})
	if _, status, body := login(t, authSrv.URL, "user042"); status != http.StatusForbidden || !strings.Contains(body, "not authorised") {
		t.Fatalf("removed user: HTTP %d %s", status, body)
	}
	// Another user still gets in; a reused code does not.
	if _, status, _ := login(t, authSrv.URL, "user007"); status != http.StatusSeeOther {
		t.Fatalf("user007: HTTP %d", status)
	}

	// Release: the Kit data goes with the instance and nobody logs in any more.
	// (No orderId: a release at the end of the service, not after an unsubscribe order.)
	if r := production(t, st.URL, map[string]string{"activity": "releaseInstance", "instanceId": instanceID}); r.ResultCode != "000000" {
		t.Fatalf("release: %+v", r)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, status, body := login(t, authSrv.URL, "user007")
		if status != http.StatusSeeOther {
			if status != http.StatusNotFound && status != http.StatusForbidden {
				t.Fatalf("after release: HTTP %d %s", status, body)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("login still succeeds after the release")
		}
		time.Sleep(300 * time.Millisecond)
	}
}

type answer struct {
	ResultCode string `json:"resultCode"`
	InstanceID string `json:"instanceId"`
}

// production sends a signed production-interface call with the emulator's signer.
func production(t *testing.T, base string, body map[string]string) answer {
	t.Helper()
	raw, _ := json.Marshal(body)
	q, err := sign.SignedQuery(accessKey, raw, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(base+config.DefaultProductionPath+"?"+q, "application/json", bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var a answer
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
		t.Fatal(err)
	}
	return a
}

var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// login submits the auth centre's login form as the browser would, follows its redirect to kooflow's callback,
// and returns kooflow's answer.
func login(t *testing.T, authURL, user string) (location string, status int, body string) {
	t.Helper()
	resp, err := noRedirect.PostForm(authURL+"/login", url.Values{"user": {user}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("auth centre login: HTTP %d", resp.StatusCode)
	}
	resp, err = noRedirect.Get(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.Header.Get("Location"), resp.StatusCode, string(b)
}
