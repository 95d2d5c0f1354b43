package kit

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func users(n int) string {
	var b strings.Builder
	b.WriteByte('[')
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"userName":"u%03d","name":"User %d","orgCode":"o1","role":"user","enable":"true"}`, i, i)
	}
	b.WriteByte(']')
	return b.String()
}

func TestParseTimeStampIsUTCPlus8(t *testing.T) {
	got, err := ParseTimeStamp("20220420114117642")
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2022, 4, 20, 3, 41, 17, 642e6, time.UTC); !got.Equal(want) {
		t.Fatalf("got %s, want %s", got, want)
	}
	for _, bad := range []string{"2022042011411764", "20221320114117642", "abc"} {
		if _, err := ParseTimeStamp(bad); err == nil {
			t.Fatalf("%q accepted", bad)
		}
	}
}

func TestParseAuthUserList(t *testing.T) {
	base := `{"instanceId":"i1","tenantId":"t1","appId":"a1","currentSyncTime":"20220420114117642","flag":1,"testFlag":0,"timeStamp":"20220420114117642","userList":%s}`
	asString, _ := json.Marshal(users(3))
	for name, list := range map[string]string{"array": users(3), "string": string(asString)} {
		a, err := ParseAuth([]byte(fmt.Sprintf(base, list)))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(a.Users) != 3 || a.Users[2].UserName != "u002" || a.Users[0].Role != "user" || !a.Users[0].Enable {
			t.Fatalf("%s: %+v", name, a.Users)
		}
	}
	if a, err := ParseAuth([]byte(fmt.Sprintf(base, users(500)))); err != nil || len(a.Users) != 500 {
		t.Fatalf("500 users: %v", err)
	}
	for name, c := range map[string]struct{ body, field string }{
		"501 users":                 {fmt.Sprintf(base, users(501)), "userList"},
		"empty list":                {fmt.Sprintf(base, `[]`), "userList"},
		"not a list":                {fmt.Sprintf(base, `"nope"`), "userList"},
		"duplicate":                 {fmt.Sprintf(base, `[{"userName":"a","name":"A","role":"user"},{"userName":"a","name":"A","role":"user"}]`), "userList[1].userName"},
		"bad role":                  {fmt.Sprintf(base, `[{"userName":"a","name":"A","role":"root"}]`), "userList[0].role"},
		"flag 4":                    {strings.Replace(fmt.Sprintf(base, users(1)), `"flag":1`, `"flag":4`, 1), "flag"},
		"no tenant":                 {strings.Replace(fmt.Sprintf(base, users(1)), `"tenantId":"t1",`, ``, 1), "tenantId"},
		"no instance in production": {strings.Replace(fmt.Sprintf(base, users(1)), `"instanceId":"i1",`, ``, 1), "instanceId"},
	} {
		_, err := ParseAuth([]byte(c.body))
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != c.field {
			t.Fatalf("%s: %v, want a problem with %s", name, err, c.field)
		}
	}
	// Cancelling authorisation needs only the user names.
	a, err := ParseAuth([]byte(strings.Replace(fmt.Sprintf(base, `[{"userName":"a"}]`), `"flag":1`, `"flag":"3"`, 1)))
	if err != nil || a.Flag != FlagCancel {
		t.Fatalf("cancel: %+v, %v", a, err)
	}
}

func TestParseTenantAndOrgs(t *testing.T) {
	// A test credential application carries no instanceId; a delete needs only the identifying fields.
	tn, err := ParseTenant([]byte(`{"instanceId":"","orderId":"","tenantId":"t1","tenantCode":"c","name":"n","domainName":"https://d","flag":1,"testFlag":1,"timeStamp":"20220413093539534"}`))
	if err != nil || !tn.TestFlag || tn.InstanceID != "" {
		t.Fatalf("test tenant: %+v, %v", tn, err)
	}
	if _, err := ParseTenant([]byte(`{"instanceId":"i","tenantId":"t1","flag":0,"testFlag":0,"timeStamp":"20220413093539534"}`)); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if _, err := ParseTenant([]byte(`{"instanceId":"i","tenantId":"t1","flag":1,"testFlag":0,"timeStamp":"20220413093539534"}`)); err == nil {
		t.Fatal("add without name accepted")
	}
	o, err := ParseOrgs(KindAllOrg, []byte(`{"instanceId":"i","tenantId":"t1","testFlag":0,"timeStamp":"20220413093539534","orgList":"[{\"orgCode\":\"a\",\"orgName\":\"A\"},{\"orgCode\":\"b\",\"orgName\":\"B\",\"parentCode\":\"a\"}]"}`))
	if err != nil || !o.Full || len(o.Orgs) != 2 || o.Orgs[1].ParentCode != "a" {
		t.Fatalf("allOrgSync: %+v, %v", o, err)
	}
	o, err = ParseOrgs(KindSingleOrg, []byte(`{"instanceId":"i","tenantId":"t1","orgCode":"a","orgName":"A","flag":2,"testFlag":0,"timeStamp":"20220413093539534"}`))
	if err != nil || o.Full || o.Orgs[0].OrgCode != "a" || o.Flag != FlagModify {
		t.Fatalf("singleOrgSync: %+v, %v", o, err)
	}
}
