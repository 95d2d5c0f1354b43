package kit

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
)

// Step is one checked Kit call of a scenario.
type Step struct {
	Name    string
	Call    string
	Pass    bool
	Detail  string
	Latency time.Duration
}

// Scenario plays a joint-operation customer's whole sync history against a seller, each call checked: the
// tenant, its application (client secret RSA-encrypted with the seller's key), its users (as a JSON string and
// as an array, at most 500), its organisation units, each added, added again, modified, deleted and deleted
// again, as the marketplace's documents require ("多次新增不应产生新的数据，且需要返回成功…删除时不需要校验实例是否
// 存在"), plus a delete for an instance that does not exist and a call with a forged x-sign.
type Scenario struct {
	// Syncer sends the calls; its Attempts apply to calls that must succeed (the buyer retries those).
	Syncer *Syncer
	// InstanceID is the joint-operation instance (bought before); OrderID its order.
	InstanceID, OrderID string
	// Tenant, DomainName (the auth centre), AppID, ClientID and ClientSecret describe the customer.
	Tenant, DomainName, AppID, ClientID, ClientSecret string
	// Users is how many users authSync adds; 0 means 20.
	Users int
	// TestFlag sends every call as the marketplace's debugging call (testFlag 1).
	TestFlag bool
	// Keep leaves the tenant, application and users in place at the end (for a login afterwards).
	Keep bool
}

const success = "000000"

// Run performs the scenario; it never stops early.
func (s *Scenario) Run(ctx context.Context) []Step {
	var out []Step
	tf := 0
	if s.TestFlag {
		tf = 1
	}
	ts := func() string { return TimeStamp(time.Now()) }
	base := func(extra map[string]any) map[string]any {
		m := map[string]any{"instanceId": s.InstanceID, "tenantId": s.Tenant, "testFlag": tf, "timeStamp": ts()}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	call := func(name, call string, body map[string]any, want ...string) {
		syncer := *s.Syncer
		if len(want) == 0 {
			want = []string{success}
		}
		if !contains(want, success) {
			syncer.Attempts = 1 // a refusal is answered at once; the buyer would not see success by retrying
		}
		began := time.Now()
		a, err := syncer.Send(ctx, call, body)
		st := Step{Name: name, Call: call, Latency: time.Since(began)}
		switch {
		case err != nil:
			st.Detail = err.Error()
		case !contains(want, a.ResultCode):
			st.Detail = fmt.Sprintf("resultCode %s %q, want %s", a.ResultCode, a.ResultMsg, strings.Join(want, " or "))
		default:
			st.Pass, st.Detail = true, "resultCode "+a.ResultCode
		}
		out = append(out, st)
	}

	tenant := base(map[string]any{"orderId": s.OrderID, "tenantCode": "code-" + s.Tenant, "name": "Tenant " + s.Tenant,
		"domainName": s.DomainName, "flag": 1})
	call("tenantSync add", "tenantSync", tenant)
	call("tenantSync add again (no new data)", "tenantSync", base(tenant))
	call("tenantSync modify", "tenantSync", base(map[string]any{"orderId": s.OrderID, "tenantCode": "code-" + s.Tenant,
		"name": "Tenant " + s.Tenant + " (renamed)", "domainName": s.DomainName, "flag": 2}))

	if s.Syncer.SellerKey == nil {
		out = append(out, Step{Name: "applicationSync add", Call: "applicationSync", Detail: "no seller public key to encrypt the client secret with"})
	} else if secret, err := EncryptSecret(s.Syncer.SellerKey, s.ClientSecret); err != nil {
		out = append(out, Step{Name: "applicationSync add", Call: "applicationSync", Detail: err.Error()})
	} else {
		app := map[string]any{"appId": s.AppID, "clientId": s.ClientID, "clientSecret": secret, "flag": 1}
		call("applicationSync add", "applicationSync", base(app))
		call("applicationSync add again (no new data)", "applicationSync", base(app))
	}

	n := s.Users
	if n <= 0 {
		n = 20
	}
	users := make([]map[string]string, n)
	for i := range users {
		name := fmt.Sprintf("user%03d", i)
		users[i] = map[string]string{"userName": name, "name": "User " + name, "orgCode": "hq", "role": "user", "enable": "true"}
	}
	asString, _ := json.Marshal(users)
	auth := func(flag int, list any) map[string]any {
		return base(map[string]any{"appId": s.AppID, "userList": list, "currentSyncTime": ts(), "flag": flag})
	}
	call(fmt.Sprintf("authSync add %d users (userList as a JSON string)", n), "authSync", auth(1, string(asString)))
	call("authSync add again (userList as an array)", "authSync", auth(1, users))
	call("authSync modify a user's role", "authSync", auth(2, []map[string]string{{"userName": "user000", "name": "User user000",
		"orgCode": "hq", "role": "admin", "enable": "true"}}))
	if n > 1 {
		call("authSync cancel a user's authorisation", "authSync", auth(3, []map[string]string{{"userName": users[n-1]["userName"]}}))
	}

	org := func(flag int, code, name, parent string) map[string]any {
		return base(map[string]any{"orgCode": code, "orgName": name, "parentCode": parent, "flag": flag})
	}
	call("singleOrgSync add", "singleOrgSync", org(1, "hq", "Head office", ""))
	call("singleOrgSync add again (no new data)", "singleOrgSync", org(1, "hq", "Head office", ""))
	call("singleOrgSync modify", "singleOrgSync", org(2, "hq", "Headquarters", ""))
	call("allOrgSync (the whole tree)", "allOrgSync", base(map[string]any{"orgList": []map[string]string{
		{"orgCode": "hq", "orgName": "Headquarters"}, {"orgCode": "sales", "orgName": "Sales", "parentCode": "hq"},
		{"orgCode": "rd", "orgName": "R&D", "parentCode": "hq"}}}))
	call("singleOrgSync delete", "singleOrgSync", base(map[string]any{"orgCode": "sales", "flag": 0}))
	call("singleOrgSync delete again", "singleOrgSync", base(map[string]any{"orgCode": "sales", "flag": 0}))

	if !s.Keep {
		del := []map[string]string{{"userName": "user000"}}
		call("authSync delete a user", "authSync", auth(0, del))
		call("authSync delete the user again", "authSync", auth(0, del))
		call("applicationSync delete", "applicationSync", base(map[string]any{"appId": s.AppID, "flag": 0}))
		call("applicationSync delete again", "applicationSync", base(map[string]any{"appId": s.AppID, "flag": 0}))
		call("tenantSync delete", "tenantSync", base(map[string]any{"flag": 0}))
		call("tenantSync delete again", "tenantSync", base(map[string]any{"flag": 0}))
	}
	gone := base(map[string]any{"flag": 0})
	gone["instanceId"] = "no-such-instance-" + s.Tenant
	call("tenantSync delete for an instance that does not exist", "tenantSync", gone)

	forged := *s.Syncer
	forged.SignWith, forged.Attempts = s.Syncer.AccessKey+"-forged", 1
	began := time.Now()
	a, err := forged.Send(ctx, "tenantSync", base(map[string]any{"flag": 0}))
	st := Step{Name: "a forged x-sign is refused", Call: "tenantSync", Latency: time.Since(began)}
	switch {
	case err != nil:
		st.Detail = err.Error()
	case a.ResultCode == success:
		st.Detail = "the seller accepted a call signed with another key"
	default:
		st.Pass, st.Detail = true, "resultCode "+a.ResultCode
	}
	out = append(out, st)
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Passed reports whether every step passed.
func Passed(steps []Step) bool {
	for _, s := range steps {
		if !s.Pass {
			return false
		}
	}
	return len(steps) > 0
}

// Print writes the steps as a report.
func Print(w io.Writer, steps []Step) {
	failed := 0
	for _, s := range steps {
		mark := "PASS"
		if !s.Pass {
			mark, failed = "FAIL", failed+1
		}
		fmt.Fprintf(w, "  %s  %-16s %-58s %8s  %s\n", mark, s.Call, s.Name, s.Latency.Round(time.Millisecond), s.Detail)
	}
	fmt.Fprintf(w, "Kit scenario: %d calls, %d failed\n", len(steps), failed)
}
