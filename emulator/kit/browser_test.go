package kit_test

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/golang-jwt/jwt/v5"
	"github.com/shopspring/decimal"

	"github.com/kooflow/kooflow/api/sso"
	"github.com/kooflow/kooflow/emulator/kit"
	"github.com/kooflow/kooflow/emulator/market"
	"github.com/kooflow/kooflow/internal/config"
	kitkey "github.com/kooflow/kooflow/internal/kit"
	"github.com/kooflow/kooflow/internal/testenv"
	"github.com/kooflow/kooflow/internal/teststack"
)

// testApp is the seller's application: its page reads the assertion from the fragment and asks its server to
// verify it (HS256 under the shared key, kooflow's issuer, its own URL as audience), then shows who logged in.
func testApp(t *testing.T, key string) *httptest.Server {
	t.Helper()
	var self string
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = io.WriteString(w, `<!doctype html><html><head><meta charset="utf-8"><title>Seller app</title></head><body>
<p id="status">verifying</p>
<script>
const a = new URLSearchParams(location.hash.slice(1)).get("assertion") || "";
fetch("/verify", {method: "POST", body: a}).then(r => r.json()).then(v => {
  const p = document.createElement("p");
  p.id = v.ok ? "who" : "refused";
  p.textContent = v.ok ? v.user + "@" + v.tenant + " " + v.jti : v.error;
  document.body.appendChild(p);
});
</script></body></html>`)
	})
	mux.HandleFunc("POST /verify", func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		var c sso.Claims
		_, err := jwt.ParseWithClaims(string(raw), &c, func(*jwt.Token) (any, error) { return []byte(key), nil },
			jwt.WithValidMethods([]string{"HS256"}), jwt.WithIssuer(sso.Issuer), jwt.WithAudience(self+"/"), jwt.WithExpirationRequired())
		w.Header().Set("Content-Type", "application/json")
		if err != nil {
			_ = json.NewEncoder(w).Encode(map[string]any{"ok": false, "error": err.Error()})
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"ok": true, "user": c.Subject, "tenant": c.Tenant, "jti": c.ID})
	})
	srv := httptest.NewServer(mux)
	self = srv.URL
	t.Cleanup(srv.Close)
	return srv
}

// browser starts a headless Debian Chromium for the test.
func browser(t *testing.T) context.Context {
	t.Helper()
	opts := append([]chromedp.ExecAllocatorOption{}, chromedp.DefaultExecAllocatorOptions[:]...)
	opts = append(opts, chromedp.ExecPath(testenv.Chromium(t)))
	for _, f := range testenv.ChromiumFlags() {
		name, value, hasValue := strings.Cut(strings.TrimPrefix(f, "--"), "=")
		if hasValue {
			opts = append(opts, chromedp.Flag(name, value))
		} else {
			opts = append(opts, chromedp.Flag(name, true))
		}
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	ctx, cancelT := context.WithTimeout(ctx, 2*time.Minute)
	t.Cleanup(cancelT)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	return ctx
}

// TestBrowserLogin drives a real headless Chromium through a login kooflow starts, against a real kooflow
// (router, worker, PostgreSQL, Temporal) and the emulator's auth centre: /sso/login sets an HttpOnly state
// cookie and sends the browser to the auth centre's authorize page; the person logs in there; the callback checks
// the state and hands the seller's application an assertion its server verifies. /sso/refresh then gives a fresh
// assertion from the HttpOnly session cookie without a login; a callback with a forged state is refused; once
// the user's authorisation is removed by authSync, the refresh is refused and the session ends.
func TestBrowserLogin(t *testing.T) {
	ctx := context.Background()
	const key = "kit-browser-sso-signing-key-0123456789ab"
	kp, err := kitkey.GenerateKey(kitkey.MinKeyBits)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := base64.StdEncoding.DecodeString(kp.PublicBase64)
	pubAny, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		t.Fatal(err)
	}
	app := testApp(t, key)
	auth := &kit.AuthCentre{Tenant: "tenant-browser", ClientID: "client-browser", ClientSecret: "s3cret-browser"}
	authSrv := httptest.NewServer(auth)
	t.Cleanup(authSrv.Close)
	cfg, m, _ := teststack.WithMarket(t, teststack.Keys{AccessKey: accessKey, MarketAK: "KITBRWAK00000000000", MarketSK: "kit-browser-market-sk-0123456789",
		ConsoleToken: "kit-browser-console-token"}, market.Options{}, map[string]string{
		config.EnvKitPrivateKey: kp.PrivatePEM,
		config.EnvSSOAppURL:     app.URL + "/",
		config.EnvSSOKey:        key,
	})
	st := teststack.Start(t, cfg, teststack.Options{})
	auth.Callback = st.URL + "/sso/callback"

	orderID := testenv.Unique("CSBR")
	line := orderID + "-000001"
	if err := m.PutOrder(market.Order{OrderID: orderID, OrderType: "NEW", CreateTime: time.Now().UTC(),
		Lines: []market.Line{{OrderLineID: line, ChargingMode: market.ChargingOneTime, ProductID: "JO-PRODUCT", SKUCode: "jo-1",
			LinearValue: 1, ProductName: "joint-operation product", ListAmount: decimal.RequireFromString("99"),
			PaidAmount: decimal.RequireFromString("99")}}}); err != nil {
		t.Fatal(err)
	}
	instanceID := production(t, st.URL, map[string]string{"activity": "newInstance", "orderId": orderID, "orderLineId": line,
		"businessId": "b-" + orderID}).InstanceID
	syncer := &kit.Syncer{BaseURL: st.URL + config.DefaultKitPath, AccessKey: accessKey, SellerKey: pubAny.(*rsa.PublicKey), Attempts: 40}
	send := func(call string, body map[string]any) {
		t.Helper()
		a, err := syncer.Send(ctx, call, body)
		if err != nil || a.ResultCode != "000000" {
			t.Fatalf("%s: %+v, %v", call, a, err)
		}
	}
	ts := kit.TimeStamp(time.Now())
	send("tenantSync", map[string]any{"instanceId": instanceID, "orderId": orderID, "tenantId": auth.Tenant, "tenantCode": "acme",
		"name": "Acme", "domainName": authSrv.URL, "flag": 1, "testFlag": 0, "timeStamp": ts})
	secret, err := kit.EncryptSecret(syncer.SellerKey, auth.ClientSecret)
	if err != nil {
		t.Fatal(err)
	}
	send("applicationSync", map[string]any{"instanceId": instanceID, "tenantId": auth.Tenant, "appId": "app-browser",
		"clientId": auth.ClientID, "clientSecret": secret, "flag": 1, "testFlag": 0, "timeStamp": ts})
	var users []map[string]string
	for i := range 500 { // authSync's largest list; user042 and user007 log in below
		name := fmt.Sprintf("user%03d", i)
		users = append(users, map[string]string{"userName": name, "name": "User " + name, "orgCode": "hq", "role": "user", "enable": "true"})
		auth.AddUser(kit.User{UserName: name, Name: "User " + name, Role: "user"})
	}
	send("authSync", map[string]any{"instanceId": instanceID, "tenantId": auth.Tenant, "appId": "app-browser", "userList": users,
		"currentSyncTime": ts, "flag": 1, "testFlag": 0, "timeStamp": ts})

	b := browser(t)
	cookie := func(name string) *network.Cookie {
		t.Helper()
		res, err := chromedp.Call(b, network.GetCookies, network.GetCookiesParams{URLs: []string{st.URL + "/sso/"}})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range res.Cookies {
			if c.Name == name {
				return c
			}
		}
		return nil
	}
	signedIn := func(what string) string {
		t.Helper()
		if err := chromedp.Do(b, chromedp.WaitVisible(chromedp.ID("who"))); err != nil {
			html, _ := chromedp.Run(b, chromedp.OuterHTML(chromedp.CSS("html")))
			t.Fatalf("%s: %v; page %s", what, err, html)
		}
		who, err := chromedp.Run(b, chromedp.Text(chromedp.ID("who")))
		if err != nil {
			t.Fatal(err)
		}
		loc, err := chromedp.Run(b, chromedp.Location())
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(loc, app.URL+"/#assertion=") || !strings.HasPrefix(who, "user042@"+auth.Tenant+" ") {
			t.Fatalf("%s: at %s, the application says %q", what, loc, who)
		}
		return strings.TrimPrefix(who, "user042@"+auth.Tenant+" ")
	}
	title := func() string {
		t.Helper()
		s, err := chromedp.Run(b, chromedp.Text(chromedp.CSS("h1")))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}

	// The login kooflow starts: to the auth centre's authorize page, with the state cookie set.
	if err := chromedp.Do(b, chromedp.Navigate(st.URL+"/sso/login?tenant="+auth.Tenant), chromedp.WaitVisible(chromedp.ID("user"))); err != nil {
		t.Fatal(err)
	}
	loc, err := chromedp.Run(b, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(loc, authSrv.URL+"/api/v1/oauth2/authorize?") || !strings.Contains(loc, "state=") ||
		!strings.Contains(loc, "client_id="+auth.ClientID) {
		t.Fatalf("login went to %s", loc)
	}
	if c := cookie("kooflow_sso_state"); c == nil || !c.HTTPOnly || c.SameSite != network.CookieSameSiteLax || !strings.Contains(loc, "state="+strings.Split(c.Value, ".")[0]) {
		t.Fatalf("state cookie %+v for %s", c, loc)
	}
	if err := chromedp.Do(b, chromedp.SendKeys(chromedp.ID("user"), "user042"), chromedp.Click(chromedp.ID("login"))); err != nil {
		t.Fatal(err)
	}
	first := signedIn("login")
	if c := cookie("kooflow_sso_state"); c != nil {
		t.Fatalf("the state cookie outlived its callback: %+v", c)
	}
	if c := cookie("kooflow_sso_session"); c == nil || !c.HTTPOnly || strings.Contains(c.Value, "user042") {
		t.Fatalf("session cookie %+v", c)
	}

	// Refresh: a fresh assertion without logging in again.
	if err := chromedp.Do(b, chromedp.Navigate(st.URL+"/sso/refresh")); err != nil {
		t.Fatal(err)
	}
	if second := signedIn("refresh"); second == first {
		t.Fatalf("the refresh handed the same assertion (jti %s)", second)
	}

	// A callback whose state this browser never started is refused.
	code, _ := auth.IssueCode("user007")
	if err := chromedp.Do(b, chromedp.Navigate(fmt.Sprintf("%s/sso/callback?code=%s&tenant=%s&state=forged", st.URL, code, auth.Tenant))); err != nil {
		t.Fatal(err)
	}
	if h := title(); h != "Login could not be verified" {
		t.Fatalf("forged state: page %q", h)
	}

	// user042's authorisation is removed: the refresh is refused and the session ends.
	send("authSync", map[string]any{"instanceId": instanceID, "tenantId": auth.Tenant, "appId": "app-browser",
		"userList": []map[string]string{{"userName": "user042"}}, "currentSyncTime": kit.TimeStamp(time.Now()), "flag": 0, "testFlag": 0,
		"timeStamp": kit.TimeStamp(time.Now().Add(time.Second))})
	if err := chromedp.Do(b, chromedp.Navigate(st.URL+"/sso/refresh")); err != nil {
		t.Fatal(err)
	}
	if h := title(); h != "Not authorised" {
		t.Fatalf("refresh of a removed user: page %q", h)
	}
	if c := cookie("kooflow_sso_session"); c != nil {
		t.Fatalf("the session outlived the user's authorisation: %+v", c)
	}
	if err := chromedp.Do(b, chromedp.Navigate(st.URL+"/sso/refresh")); err != nil {
		t.Fatal(err)
	}
	if h := title(); h != "Session expired" {
		t.Fatalf("refresh without a session: page %q", h)
	}

	// Release: the Kit data goes with the instance, and user007, still authorised until now, no longer logs in.
	if r := production(t, st.URL, map[string]string{"activity": "releaseInstance", "instanceId": instanceID}); r.ResultCode != "000000" {
		t.Fatalf("release: %+v", r)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if err := chromedp.Do(b, chromedp.Navigate(st.URL+"/sso/login?tenant="+auth.Tenant)); err != nil {
			t.Fatal(err)
		}
		if loc, err := chromedp.Run(b, chromedp.Location()); err != nil {
			t.Fatal(err)
		} else if strings.HasPrefix(loc, authSrv.URL) { // the auth centre's login page: the tenant is still known
			if err := chromedp.Do(b, chromedp.WaitVisible(chromedp.ID("user")), chromedp.SendKeys(chromedp.ID("user"), "user007"),
				chromedp.Click(chromedp.ID("login"))); err != nil {
				t.Fatal(err)
			}
			for strings.HasPrefix(loc, authSrv.URL) && time.Now().Before(deadline) {
				time.Sleep(100 * time.Millisecond)
				if loc, err = chromedp.Run(b, chromedp.Location()); err != nil {
					t.Fatal(err)
				}
			}
			if strings.HasPrefix(loc, app.URL) { // the release has not reached the Kit rows yet
				if time.Now().After(deadline) {
					t.Fatal("user007 still logs in 30 s after the release")
				}
				time.Sleep(300 * time.Millisecond)
				continue
			}
		}
		if h := title(); h != "Subscription ended" && h != "Unknown organisation" {
			t.Fatalf("login after the release: page %q", h)
		}
		break
	}
}
