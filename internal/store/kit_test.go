package store_test

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/kooflow/kooflow/internal/store"
)

// The Kit rows' idempotency rules (docs/koogallery.md, "Kit interfaces"), one table per call and flag, against a
// real PostgreSQL: each step names how many rows it must change and what the instance's Kit view must be after.

var kitT0 = time.Date(2026, 11, 29, 1, 0, 0, 0, time.UTC)

type kitStep struct {
	name    string
	do      func(ctx context.Context, s *store.Store) (int64, error)
	changed int64
	check   func(t *testing.T, v store.KitView)
}

// runKitSteps runs the steps in order; a step that changes nothing must leave the view exactly as it was
// (updated_at included).
func runKitSteps(t *testing.T, s *store.Store, instanceID string, steps []kitStep) {
	t.Helper()
	ctx := context.Background()
	before, err := s.KitOfInstance(ctx, instanceID, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range steps {
		n, err := st.do(ctx, s)
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if n != st.changed {
			t.Fatalf("%s: changed %d rows, want %d", st.name, n, st.changed)
		}
		after, err := s.KitOfInstance(ctx, instanceID, false)
		if err != nil {
			t.Fatal(err)
		}
		if st.changed == 0 && !reflect.DeepEqual(before, after) {
			t.Fatalf("%s changed nothing but the view moved:\nbefore %+v\nafter  %+v", st.name, before, after)
		}
		if st.check != nil {
			st.check(t, after)
		}
		before = after
	}
}

func tenant(name string, at time.Time) store.KitTenant {
	return store.KitTenant{KitKey: store.KitKey{InstanceID: "inst-1", TenantID: "t-1"}, OrderID: "CS1", TenantCode: "acme",
		Name: name, DomainName: "https://acme.example", SyncedAt: at}
}

func TestKitTenantIdempotency(t *testing.T) {
	s := newStore(t)
	key := store.KitKey{InstanceID: "inst-1", TenantID: "t-1"}
	name := func(want string) func(*testing.T, store.KitView) {
		return func(t *testing.T, v store.KitView) {
			t.Helper()
			if len(v.Tenants) != 1 || v.Tenants[0].Name != want || v.Tenants[0].TenantCode != "acme" {
				t.Fatalf("tenants %+v, want one named %q", v.Tenants, want)
			}
		}
	}
	none := func(t *testing.T, v store.KitView) {
		t.Helper()
		if len(v.Tenants)+len(v.Applications)+len(v.Users)+len(v.Orgs) != 0 {
			t.Fatalf("rows left: %+v", v)
		}
	}
	runKitSteps(t, s, "inst-1", []kitStep{
		{"delete before any add", func(ctx context.Context, s *store.Store) (int64, error) { return s.DeleteKitTenant(ctx, key) }, 0, none},
		{"add", func(ctx context.Context, s *store.Store) (int64, error) {
			return s.UpsertKitTenant(ctx, tenant("Acme", kitT0))
		}, 1, name("Acme")},
		{"repeated add", func(ctx context.Context, s *store.Store) (int64, error) {
			return s.UpsertKitTenant(ctx, tenant("Acme", kitT0.Add(time.Minute)))
		}, 0, name("Acme")},
		{"modify", func(ctx context.Context, s *store.Store) (int64, error) {
			m := tenant("Acme Ltd", kitT0.Add(2*time.Minute))
			m.TenantCode = "" // a modify carries only name and domainName
			return s.UpsertKitTenant(ctx, m)
		}, 1, name("Acme Ltd")},
		{"repeated modify", func(ctx context.Context, s *store.Store) (int64, error) {
			m := tenant("Acme Ltd", kitT0.Add(3*time.Minute))
			m.TenantCode = ""
			return s.UpsertKitTenant(ctx, m)
		}, 0, name("Acme Ltd")},
		{"late modify older than the row", func(ctx context.Context, s *store.Store) (int64, error) {
			return s.UpsertKitTenant(ctx, tenant("Old name", kitT0.Add(time.Second)))
		}, 0, name("Acme Ltd")},
		{"add of the application", func(ctx context.Context, s *store.Store) (int64, error) {
			return s.UpsertKitApplication(ctx, store.KitApplication{KitKey: key, AppID: "app-1", ClientID: "c", ClientSecret: "ct", SyncedAt: kitT0})
		}, 1, nil},
		{"delete takes the tenant's applications along", func(ctx context.Context, s *store.Store) (int64, error) {
			return s.DeleteKitTenant(ctx, key)
		}, 2, none},
		{"repeated delete", func(ctx context.Context, s *store.Store) (int64, error) { return s.DeleteKitTenant(ctx, key) }, 0, none},
	})
	// A delete for an instance kooflow never heard of succeeds.
	if n, err := s.DeleteKitTenant(context.Background(), store.KitKey{InstanceID: "never-created", TenantID: "t"}); err != nil || n != 0 {
		t.Fatalf("delete of an unknown instance: %d, %v", n, err)
	}
}

func TestKitTestRowsKeptApart(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	if _, err := s.UpsertKitTenant(ctx, tenant("Production", kitT0)); err != nil {
		t.Fatal(err)
	}
	test := tenant("Dial test", kitT0)
	test.TestFlag = true
	if n, err := s.UpsertKitTenant(ctx, test); err != nil || n != 1 {
		t.Fatalf("test add: %d, %v", n, err)
	}
	prod, err := s.KitOfInstance(ctx, "inst-1", false)
	if err != nil || len(prod.Tenants) != 1 || prod.Tenants[0].Name != "Production" {
		t.Fatalf("production view %+v, %v", prod, err)
	}
	if n, err := s.DeleteKitTenant(ctx, test.KitKey); err != nil || n != 1 {
		t.Fatalf("test delete: %d, %v", n, err)
	}
	if prod, _ := s.KitOfInstance(ctx, "inst-1", false); len(prod.Tenants) != 1 {
		t.Fatal("the test delete removed the production tenant")
	}
}

func TestKitApplicationIdempotency(t *testing.T) {
	s := newStore(t)
	key := store.KitKey{InstanceID: "inst-1", TenantID: "t-1"}
	app := func(secret string, at time.Time) store.KitApplication {
		return store.KitApplication{KitKey: key, AppID: "app-1", ClientID: "client-1", ClientSecret: secret, SyncedAt: at}
	}
	secret := func(want string) func(*testing.T, store.KitView) {
		return func(t *testing.T, v store.KitView) {
			t.Helper()
			if len(v.Applications) != 1 || v.Applications[0].ClientSecret != want {
				t.Fatalf("applications %+v, want secret %q", v.Applications, want)
			}
		}
	}
	runKitSteps(t, s, "inst-1", []kitStep{
		{"delete before any add", func(ctx context.Context, s *store.Store) (int64, error) {
			return s.DeleteKitApplication(ctx, key, "app-1")
		}, 0, nil},
		{"add", func(ctx context.Context, s *store.Store) (int64, error) {
			return s.UpsertKitApplication(ctx, app("ct-1", kitT0))
		}, 1, secret("ct-1")},
		{"repeated add", func(ctx context.Context, s *store.Store) (int64, error) {
			return s.UpsertKitApplication(ctx, app("ct-1", kitT0.Add(time.Minute)))
		}, 0, secret("ct-1")},
		{"modify (new secret)", func(ctx context.Context, s *store.Store) (int64, error) {
			return s.UpsertKitApplication(ctx, app("ct-2", kitT0.Add(2*time.Minute)))
		}, 1, secret("ct-2")},
		{"late add older than the row", func(ctx context.Context, s *store.Store) (int64, error) {
			return s.UpsertKitApplication(ctx, app("ct-1", kitT0))
		}, 0, secret("ct-2")},
		{"users of the application", func(ctx context.Context, s *store.Store) (int64, error) {
			return s.UpsertKitUsers(ctx, kitUsers(key, 3, "user", kitT0))
		}, 3, nil},
		{"delete takes the users along", func(ctx context.Context, s *store.Store) (int64, error) {
			return s.DeleteKitApplication(ctx, key, "app-1")
		}, 4, func(t *testing.T, v store.KitView) {
			if len(v.Applications)+len(v.Users) != 0 {
				t.Fatalf("left %+v", v)
			}
		}},
		{"repeated delete", func(ctx context.Context, s *store.Store) (int64, error) {
			return s.DeleteKitApplication(ctx, key, "app-1")
		}, 0, nil},
	})
}

func kitUsers(key store.KitKey, n int, role string, at time.Time) []store.KitUser {
	out := make([]store.KitUser, n)
	for i := range out {
		name := fmt.Sprintf("u%03d", i)
		detail, _ := json.Marshal(map[string]string{"userName": name, "email": name + "@acme.example"})
		out[i] = store.KitUser{KitKey: key, AppID: "app-1", UserName: name, Name: "User " + name, OrgCode: "o1",
			Role: role, Enabled: true, Detail: detail, SyncedAt: at}
	}
	return out
}

func TestKitUsersIdempotency(t *testing.T) {
	s := newStore(t)
	key := store.KitKey{InstanceID: "inst-1", TenantID: "t-1"}
	names := []string{"u000", "u001", "u499"}
	count := func(total, authorised int) func(*testing.T, store.KitView) {
		return func(t *testing.T, v store.KitView) {
			t.Helper()
			a := 0
			for _, u := range v.Users {
				if u.Authorised {
					a++
				}
			}
			if len(v.Users) != total || a != authorised {
				t.Fatalf("%d users (%d authorised), want %d (%d)", len(v.Users), a, total, authorised)
			}
		}
	}
	runKitSteps(t, s, "inst-1", []kitStep{
		{"delete before any add", func(ctx context.Context, s *store.Store) (int64, error) {
			return s.DeleteKitUsers(ctx, key, "app-1", names)
		}, 0, count(0, 0)},
		{"cancel before any add", func(ctx context.Context, s *store.Store) (int64, error) {
			return s.CancelKitUsers(ctx, key, "app-1", names, kitT0)
		}, 0, count(0, 0)},
		{"add 500", func(ctx context.Context, s *store.Store) (int64, error) {
			return s.UpsertKitUsers(ctx, kitUsers(key, 500, "user", kitT0))
		}, 500, count(500, 500)},
		{"repeated add", func(ctx context.Context, s *store.Store) (int64, error) {
			return s.UpsertKitUsers(ctx, kitUsers(key, 500, "user", kitT0.Add(time.Minute)))
		}, 0, count(500, 500)},
		{"modify one of three", func(ctx context.Context, s *store.Store) (int64, error) {
			us := kitUsers(key, 3, "user", kitT0.Add(2*time.Minute))
			us[1].Role = "admin"
			return s.UpsertKitUsers(ctx, us)
		}, 1, func(t *testing.T, v store.KitView) {
			if v.Users[1].Role != "admin" || v.Users[0].Role != "user" {
				t.Fatalf("roles %s %s", v.Users[0].Role, v.Users[1].Role)
			}
		}},
		{"cancel authorisation", func(ctx context.Context, s *store.Store) (int64, error) {
			return s.CancelKitUsers(ctx, key, "app-1", names, kitT0.Add(3*time.Minute))
		}, 3, count(500, 497)},
		{"repeated cancel", func(ctx context.Context, s *store.Store) (int64, error) {
			return s.CancelKitUsers(ctx, key, "app-1", names, kitT0.Add(4*time.Minute))
		}, 0, count(500, 497)},
		{"add again authorises again", func(ctx context.Context, s *store.Store) (int64, error) {
			return s.UpsertKitUsers(ctx, kitUsers(key, 1, "user", kitT0.Add(5*time.Minute)))
		}, 1, count(500, 498)},
		{"delete", func(ctx context.Context, s *store.Store) (int64, error) {
			return s.DeleteKitUsers(ctx, key, "app-1", names)
		}, 3, count(497, 497)},
		{"repeated delete", func(ctx context.Context, s *store.Store) (int64, error) {
			return s.DeleteKitUsers(ctx, key, "app-1", names)
		}, 0, count(497, 497)},
	})
}

func TestKitOrgsIdempotency(t *testing.T) {
	s := newStore(t)
	key := store.KitKey{InstanceID: "inst-1", TenantID: "t-1"}
	orgs := func(codes ...string) []store.KitOrg {
		out := make([]store.KitOrg, len(codes))
		for i, c := range codes {
			out[i] = store.KitOrg{KitKey: key, OrgCode: c, OrgName: "Unit " + c}
		}
		return out
	}
	codes := func(want ...string) func(*testing.T, store.KitView) {
		return func(t *testing.T, v store.KitView) {
			t.Helper()
			var got []string
			for _, o := range v.Orgs {
				got = append(got, o.OrgCode)
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("org units %v, want %v", got, want)
			}
		}
	}
	runKitSteps(t, s, "inst-1", []kitStep{
		{"full sync", func(ctx context.Context, s *store.Store) (int64, error) {
			return s.UpsertKitOrgs(ctx, key, orgs("a", "b", "c"), true, kitT0)
		}, 3, codes("a", "b", "c")},
		{"repeated full sync", func(ctx context.Context, s *store.Store) (int64, error) {
			return s.UpsertKitOrgs(ctx, key, orgs("a", "b", "c"), true, kitT0.Add(time.Minute))
		}, 0, codes("a", "b", "c")},
		{"full sync without c", func(ctx context.Context, s *store.Store) (int64, error) {
			return s.UpsertKitOrgs(ctx, key, orgs("a", "b"), true, kitT0.Add(2*time.Minute))
		}, 1, codes("a", "b")},
		{"single add", func(ctx context.Context, s *store.Store) (int64, error) {
			return s.UpsertKitOrgs(ctx, key, orgs("d"), false, kitT0.Add(3*time.Minute))
		}, 1, codes("a", "b", "d")},
		{"repeated single add", func(ctx context.Context, s *store.Store) (int64, error) {
			return s.UpsertKitOrgs(ctx, key, orgs("d"), false, kitT0.Add(4*time.Minute))
		}, 0, codes("a", "b", "d")},
		{"single modify", func(ctx context.Context, s *store.Store) (int64, error) {
			o := orgs("d")
			o[0].ParentCode = "a"
			return s.UpsertKitOrgs(ctx, key, o, false, kitT0.Add(5*time.Minute))
		}, 1, codes("a", "b", "d")},
		{"single delete", func(ctx context.Context, s *store.Store) (int64, error) { return s.DeleteKitOrg(ctx, key, "d") }, 1, codes("a", "b")},
		{"repeated single delete", func(ctx context.Context, s *store.Store) (int64, error) { return s.DeleteKitOrg(ctx, key, "d") }, 0, codes("a", "b")},
	})
}

// TestKitReleasedWithInstance: the release's write (ClearAppInfo) deletes the instance's Kit rows, and
// KitInstanceState then reports the instance released.
func TestKitReleasedWithInstance(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	key := store.KitKey{InstanceID: "inst-1", TenantID: "t-1"}
	if known, _, err := s.KitInstanceState(ctx, "inst-1"); err != nil || known {
		t.Fatalf("unknown instance: known %v, %v", known, err)
	}
	if _, _, err := s.AcceptInbox(ctx, inboxRow("inst-1", kitT0), time.Second); err != nil {
		t.Fatal(err)
	}
	if known, released, err := s.KitInstanceState(ctx, "inst-1"); err != nil || !known || released {
		t.Fatalf("inbox instance: known %v released %v, %v", known, released, err)
	}
	if _, err := s.UpsertKitTenant(ctx, tenant("Acme", kitT0)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpsertKitUsers(ctx, kitUsers(key, 2, "user", kitT0)); err != nil {
		t.Fatal(err)
	}
	row := &store.InstanceRow{InstanceID: "inst-1", WorkflowID: "instance/inst-1", Version: 1, OrderID: "CS-inst-1",
		OrderLineID: "CS-inst-1-000001", Lifecycle: "RELEASED", ProductKnown: true, Supervision: "NOT_INVOLVED"}
	if err := s.Apply(ctx, store.Write{Summary: "release", Instance: row, ClearAppInfo: true}); err != nil {
		t.Fatal(err)
	}
	v, err := s.KitOfInstance(ctx, "inst-1", false)
	if err != nil || len(v.Tenants)+len(v.Users) != 0 {
		t.Fatalf("after release %+v, %v", v, err)
	}
	if known, released, err := s.KitInstanceState(ctx, "inst-1"); err != nil || !known || !released {
		t.Fatalf("released instance: known %v released %v, %v", known, released, err)
	}
}

// TestKitDeliveries: a delivery is listed until handed, read back by id, marked delivered once, dropped only
// while unhanded, and released with its instance.
func TestKitDeliveries(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	add := func(instanceID, kind string) int64 {
		t.Helper()
		id, err := s.AddKitDelivery(ctx, store.KitDelivery{InstanceID: instanceID, Kind: kind, Call: "tenantSync", Flag: "add",
			TenantID: "t-1", Detail: json.RawMessage(`{"call":"tenantSync"}`)})
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	unhanded := func(instanceID string) []int64 {
		t.Helper()
		ds, err := s.UnhandedKitDeliveries(ctx, instanceID)
		if err != nil {
			t.Fatal(err)
		}
		var ids []int64
		for _, d := range ds {
			ids = append(ids, d.DeliveryID)
		}
		return ids
	}
	a, b, c := add("inst-1", "tenant"), add("inst-1", "users"), add("inst-2", "org")
	if got := unhanded("inst-1"); fmt.Sprint(got) != fmt.Sprint([]int64{a, b}) {
		t.Fatalf("unhanded %v, want [%d %d]", got, a, b)
	}
	if _, err := s.AddKitDelivery(ctx, store.KitDelivery{InstanceID: "inst-1", Kind: "password", Call: "x", Flag: "add",
		Detail: json.RawMessage(`{}`)}); err == nil {
		t.Fatal("a delivery of an unknown kind was accepted")
	}
	if err := s.KitDeliveryHanded(ctx, a); err != nil {
		t.Fatal(err)
	}
	// A handed delivery is no longer listed and can no longer be dropped.
	if err := s.DropKitDelivery(ctx, a); err != nil {
		t.Fatal(err)
	}
	if d, found, err := s.KitDeliveryByID(ctx, a); err != nil || !found || d.HandedAt == nil || d.DeliveredAt != nil || d.Kind != "tenant" {
		t.Fatalf("handed delivery %+v found %v, %v", d, found, err)
	}
	if err := s.DropKitDelivery(ctx, b); err != nil {
		t.Fatal(err)
	}
	if _, found, err := s.KitDeliveryByID(ctx, b); err != nil || found {
		t.Fatalf("dropped delivery still there (%v)", err)
	}
	if got := unhanded("inst-1"); len(got) != 0 {
		t.Fatalf("unhanded after hand-over and drop: %v", got)
	}
	for range 2 {
		if err := s.KitDelivered(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	d1, _, _ := s.KitDeliveryByID(ctx, a)
	if d1.DeliveredAt == nil {
		t.Fatal("not marked delivered")
	}
	if err := s.KitDelivered(ctx, a); err != nil {
		t.Fatal(err)
	}
	if d2, _, _ := s.KitDeliveryByID(ctx, a); !d2.DeliveredAt.Equal(*d1.DeliveredAt) {
		t.Fatal("a second delivery moved delivered_at")
	}
	row := &store.InstanceRow{InstanceID: "inst-2", WorkflowID: "instance/inst-2", Version: 1, OrderID: "CS-inst-2",
		OrderLineID: "CS-inst-2-000001", Lifecycle: "RELEASED", ProductKnown: true, Supervision: "NOT_INVOLVED"}
	if err := s.Apply(ctx, store.Write{Summary: "release", Instance: row, ClearAppInfo: true}); err != nil {
		t.Fatal(err)
	}
	if _, found, err := s.KitDeliveryByID(ctx, c); err != nil || found {
		t.Fatalf("a released instance's delivery is still there (%v)", err)
	}
}
