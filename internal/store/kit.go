package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// The Kit rows (kit_tenants, kit_applications, kit_users, kit_orgs): what the marketplace's joint-operation sync
// calls told the seller (docs/koogallery.md, "Kit interfaces"). Every write is idempotent: an add of a row that
// exists with the same values changes nothing, a delete of a row that does not exist succeeds, and a row is only
// overwritten by a call whose timeStamp is at least as new as the one that wrote it. Each method reports how
// many rows it changed.

// KitKey identifies the instance and tenant a sync call concerns; TestFlag keeps test calls apart.
type KitKey struct {
	TestFlag   bool   `json:"testFlag"`
	InstanceID string `json:"instanceId"`
	TenantID   string `json:"tenantId"`
}

// KitTenant is a kit_tenants row.
type KitTenant struct {
	KitKey
	OrderID    string    `json:"orderId,omitempty"`
	TenantCode string    `json:"tenantCode"`
	Name       string    `json:"name"`
	DomainName string    `json:"domainName"`
	SyncedAt   time.Time `json:"syncedAt"`
	UpdatedAt  time.Time `json:"updatedAt"`
}

// KitApplication is a kit_applications row. ClientSecret is the marketplace's ciphertext; it is never sent to
// the console.
type KitApplication struct {
	KitKey
	AppID        string    `json:"appId"`
	ClientID     string    `json:"clientId"`
	ClientSecret string    `json:"-"`
	SyncedAt     time.Time `json:"syncedAt"`
	UpdatedAt    time.Time `json:"updatedAt"`
}

// KitUser is a kit_users row.
type KitUser struct {
	KitKey
	AppID      string          `json:"appId"`
	UserName   string          `json:"userName"`
	Name       string          `json:"name"`
	OrgCode    string          `json:"orgCode,omitempty"`
	Role       string          `json:"role"`
	Enabled    bool            `json:"enabled"`
	Authorised bool            `json:"authorised"`
	Detail     json.RawMessage `json:"-"`
	SyncedAt   time.Time       `json:"syncedAt"`
	UpdatedAt  time.Time       `json:"updatedAt"`
}

// KitOrg is a kit_orgs row.
type KitOrg struct {
	KitKey
	OrgCode    string          `json:"orgCode"`
	OrgName    string          `json:"orgName"`
	ParentCode string          `json:"parentCode,omitempty"`
	Detail     json.RawMessage `json:"-"`
	SyncedAt   time.Time       `json:"syncedAt"`
	UpdatedAt  time.Time       `json:"updatedAt"`
}

// KitInstanceState says whether instanceID is known (in the read model or, not yet started, in the inbox) and
// whether it was released.
func (s *Store) KitInstanceState(ctx context.Context, instanceID string) (known, released bool, err error) {
	var lifecycle string
	err = s.Pool.QueryRow(ctx, `SELECT lifecycle FROM instances WHERE instance_id = $1`, instanceID).Scan(&lifecycle)
	switch {
	case err == nil:
		return true, lifecycle == "RELEASED", nil
	case !errors.Is(err, pgx.ErrNoRows):
		return false, false, fmt.Errorf("read instance %s: %w", instanceID, err)
	}
	err = s.Pool.QueryRow(ctx, `SELECT true FROM koogallery_inbox WHERE instance_id = $1`, instanceID).Scan(&known)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, false, nil
	}
	if err != nil {
		return false, false, fmt.Errorf("read inbox entry %s: %w", instanceID, err)
	}
	return known, false, nil
}

// UpsertKitTenant adds or modifies a tenant. A modify leaves tenant_code as it was unless the row is new (the
// marketplace modifies only name and domainName).
func (s *Store) UpsertKitTenant(ctx context.Context, t KitTenant) (int64, error) {
	tag, err := s.Pool.Exec(ctx, `
		INSERT INTO kit_tenants AS k (test_flag, instance_id, tenant_id, order_id, tenant_code, name, domain_name, synced_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
		ON CONFLICT (test_flag, instance_id, tenant_id) DO UPDATE SET
			order_id = CASE WHEN EXCLUDED.order_id <> '' THEN EXCLUDED.order_id ELSE k.order_id END,
			tenant_code = CASE WHEN EXCLUDED.tenant_code <> '' THEN EXCLUDED.tenant_code ELSE k.tenant_code END,
			name = EXCLUDED.name, domain_name = EXCLUDED.domain_name, synced_at = EXCLUDED.synced_at, updated_at = now()
		WHERE k.synced_at <= EXCLUDED.synced_at AND (
			(k.name, k.domain_name) IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.domain_name)
			OR (EXCLUDED.tenant_code <> '' AND k.tenant_code <> EXCLUDED.tenant_code)
			OR (EXCLUDED.order_id <> '' AND k.order_id <> EXCLUDED.order_id))`,
		t.TestFlag, t.InstanceID, t.TenantID, t.OrderID, t.TenantCode, t.Name, t.DomainName, t.SyncedAt.UTC())
	if err != nil {
		return 0, fmt.Errorf("record tenant %s of instance %s: %w", t.TenantID, t.InstanceID, err)
	}
	return tag.RowsAffected(), nil
}

// DeleteKitTenant deletes a tenant with its applications, users and org units.
func (s *Store) DeleteKitTenant(ctx context.Context, k KitKey) (int64, error) {
	var n int64
	err := pgx.BeginFunc(ctx, s.Pool, func(tx pgx.Tx) error {
		for _, table := range []string{"kit_users", "kit_applications", "kit_orgs", "kit_tenants"} {
			tag, err := tx.Exec(ctx, `DELETE FROM `+table+` WHERE test_flag = $1 AND instance_id = $2 AND tenant_id = $3`,
				k.TestFlag, k.InstanceID, k.TenantID)
			if err != nil {
				return fmt.Errorf("delete from %s: %w", table, err)
			}
			n += tag.RowsAffected()
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("delete tenant %s of instance %s: %w", k.TenantID, k.InstanceID, err)
	}
	return n, nil
}

// UpsertKitApplication adds or modifies an application credential.
func (s *Store) UpsertKitApplication(ctx context.Context, a KitApplication) (int64, error) {
	tag, err := s.Pool.Exec(ctx, `
		INSERT INTO kit_applications AS k (test_flag, instance_id, tenant_id, app_id, client_id, client_secret, synced_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (test_flag, instance_id, tenant_id, app_id) DO UPDATE SET
			client_id = EXCLUDED.client_id, client_secret = EXCLUDED.client_secret, synced_at = EXCLUDED.synced_at,
			updated_at = now()
		WHERE k.synced_at <= EXCLUDED.synced_at
			AND (k.client_id, k.client_secret) IS DISTINCT FROM (EXCLUDED.client_id, EXCLUDED.client_secret)`,
		a.TestFlag, a.InstanceID, a.TenantID, a.AppID, a.ClientID, a.ClientSecret, a.SyncedAt.UTC())
	if err != nil {
		return 0, fmt.Errorf("record application %s of instance %s: %w", a.AppID, a.InstanceID, err)
	}
	return tag.RowsAffected(), nil
}

// DeleteKitApplication deletes an application credential with its users.
func (s *Store) DeleteKitApplication(ctx context.Context, k KitKey, appID string) (int64, error) {
	var n int64
	err := pgx.BeginFunc(ctx, s.Pool, func(tx pgx.Tx) error {
		for _, table := range []string{"kit_users", "kit_applications"} {
			tag, err := tx.Exec(ctx, `DELETE FROM `+table+` WHERE test_flag = $1 AND instance_id = $2 AND tenant_id = $3 AND app_id = $4`,
				k.TestFlag, k.InstanceID, k.TenantID, appID)
			if err != nil {
				return fmt.Errorf("delete from %s: %w", table, err)
			}
			n += tag.RowsAffected()
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("delete application %s of instance %s: %w", appID, k.InstanceID, err)
	}
	return n, nil
}

// UpsertKitUsers adds or modifies users in one transaction; each is (again) authorised.
func (s *Store) UpsertKitUsers(ctx context.Context, users []KitUser) (int64, error) {
	var n int64
	err := pgx.BeginFunc(ctx, s.Pool, func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		for _, u := range users {
			detail := u.Detail
			if len(detail) == 0 {
				detail = json.RawMessage(`{}`)
			}
			b.Queue(`
				INSERT INTO kit_users AS k (test_flag, instance_id, tenant_id, app_id, user_name, name, org_code, role,
					enabled, authorised, detail, synced_at)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, true, $10, $11)
				ON CONFLICT (test_flag, instance_id, tenant_id, app_id, user_name) DO UPDATE SET
					name = EXCLUDED.name, org_code = EXCLUDED.org_code, role = EXCLUDED.role, enabled = EXCLUDED.enabled,
					authorised = true, detail = EXCLUDED.detail, synced_at = EXCLUDED.synced_at, updated_at = now()
				WHERE k.synced_at <= EXCLUDED.synced_at
					AND (k.name, k.org_code, k.role, k.enabled, k.authorised, k.detail)
						IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.org_code, EXCLUDED.role, EXCLUDED.enabled, true, EXCLUDED.detail)`,
				u.TestFlag, u.InstanceID, u.TenantID, u.AppID, u.UserName, u.Name, u.OrgCode, u.Role, u.Enabled,
				[]byte(detail), u.SyncedAt.UTC())
		}
		res := tx.SendBatch(ctx, b)
		for range users {
			tag, err := res.Exec()
			if err != nil {
				_ = res.Close()
				return err
			}
			n += tag.RowsAffected()
		}
		return res.Close()
	})
	if err != nil {
		return 0, fmt.Errorf("record users: %w", err)
	}
	return n, nil
}

// DeleteKitUsers deletes the named users of an application.
func (s *Store) DeleteKitUsers(ctx context.Context, k KitKey, appID string, userNames []string) (int64, error) {
	tag, err := s.Pool.Exec(ctx, `DELETE FROM kit_users WHERE test_flag = $1 AND instance_id = $2 AND tenant_id = $3
		AND app_id = $4 AND user_name = ANY($5)`, k.TestFlag, k.InstanceID, k.TenantID, appID, userNames)
	if err != nil {
		return 0, fmt.Errorf("delete users: %w", err)
	}
	return tag.RowsAffected(), nil
}

// CancelKitUsers withdraws the named users' authorisation; they stay known. Unknown users are ignored.
func (s *Store) CancelKitUsers(ctx context.Context, k KitKey, appID string, userNames []string, at time.Time) (int64, error) {
	tag, err := s.Pool.Exec(ctx, `UPDATE kit_users SET authorised = false, synced_at = $6, updated_at = now()
		WHERE test_flag = $1 AND instance_id = $2 AND tenant_id = $3 AND app_id = $4 AND user_name = ANY($5)
			AND authorised AND synced_at <= $6`, k.TestFlag, k.InstanceID, k.TenantID, appID, userNames, at.UTC())
	if err != nil {
		return 0, fmt.Errorf("cancel users' authorisation: %w", err)
	}
	return tag.RowsAffected(), nil
}

// UpsertKitOrgs adds or modifies org units. With replace, the tenant's other units are deleted (a full sync).
func (s *Store) UpsertKitOrgs(ctx context.Context, k KitKey, orgs []KitOrg, replace bool, at time.Time) (int64, error) {
	var n int64
	err := pgx.BeginFunc(ctx, s.Pool, func(tx pgx.Tx) error {
		if replace {
			codes := make([]string, len(orgs))
			for i, o := range orgs {
				codes[i] = o.OrgCode
			}
			tag, err := tx.Exec(ctx, `DELETE FROM kit_orgs WHERE test_flag = $1 AND instance_id = $2 AND tenant_id = $3
				AND NOT (org_code = ANY($4)) AND synced_at <= $5`, k.TestFlag, k.InstanceID, k.TenantID, codes, at.UTC())
			if err != nil {
				return fmt.Errorf("delete org units left out of the full sync: %w", err)
			}
			n += tag.RowsAffected()
		}
		for _, o := range orgs {
			detail := o.Detail
			if len(detail) == 0 {
				detail = json.RawMessage(`{}`)
			}
			tag, err := tx.Exec(ctx, `
				INSERT INTO kit_orgs AS o (test_flag, instance_id, tenant_id, org_code, org_name, parent_code, detail, synced_at)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
				ON CONFLICT (test_flag, instance_id, tenant_id, org_code) DO UPDATE SET
					org_name = EXCLUDED.org_name, parent_code = EXCLUDED.parent_code, detail = EXCLUDED.detail,
					synced_at = EXCLUDED.synced_at, updated_at = now()
				WHERE o.synced_at <= EXCLUDED.synced_at
					AND (o.org_name, o.parent_code, o.detail) IS DISTINCT FROM (EXCLUDED.org_name, EXCLUDED.parent_code, EXCLUDED.detail)`,
				k.TestFlag, k.InstanceID, k.TenantID, o.OrgCode, o.OrgName, o.ParentCode, []byte(detail), at.UTC())
			if err != nil {
				return fmt.Errorf("record org unit %s: %w", o.OrgCode, err)
			}
			n += tag.RowsAffected()
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("record org units of tenant %s: %w", k.TenantID, err)
	}
	return n, nil
}

// DeleteKitOrg deletes one org unit.
func (s *Store) DeleteKitOrg(ctx context.Context, k KitKey, orgCode string) (int64, error) {
	tag, err := s.Pool.Exec(ctx, `DELETE FROM kit_orgs WHERE test_flag = $1 AND instance_id = $2 AND tenant_id = $3
		AND org_code = $4`, k.TestFlag, k.InstanceID, k.TenantID, orgCode)
	if err != nil {
		return 0, fmt.Errorf("delete org unit %s: %w", orgCode, err)
	}
	return tag.RowsAffected(), nil
}

// releaseKit deletes an instance's Kit rows when the instance is released (docs/koogallery.md, "Kit
// interfaces": the Kit data goes with the instance).
func releaseKit(ctx context.Context, tx pgx.Tx, instanceID string) error {
	for _, table := range []string{"kit_users", "kit_applications", "kit_orgs", "kit_tenants", "kit_deliveries"} {
		if _, err := tx.Exec(ctx, `DELETE FROM `+table+` WHERE instance_id = $1`, instanceID); err != nil {
			return fmt.Errorf("release Kit rows in %s: %w", table, err)
		}
	}
	return nil
}

// KitView is everything the Kit calls synced for one instance, production and test rows apart.
type KitView struct {
	Tenants      []KitTenant      `json:"tenants"`
	Applications []KitApplication `json:"applications"`
	Users        []KitUser        `json:"users"`
	Orgs         []KitOrg         `json:"orgs"`
}

// KitOfInstance reads the Kit rows of an instance with the given test flag.
func (s *Store) KitOfInstance(ctx context.Context, instanceID string, test bool) (KitView, error) {
	v := KitView{Tenants: []KitTenant{}, Applications: []KitApplication{}, Users: []KitUser{}, Orgs: []KitOrg{}}
	rows, err := s.Pool.Query(ctx, `SELECT tenant_id, order_id, tenant_code, name, domain_name, synced_at, updated_at
		FROM kit_tenants WHERE test_flag = $1 AND instance_id = $2 ORDER BY tenant_id`, test, instanceID)
	if err != nil {
		return v, fmt.Errorf("read tenants of %s: %w", instanceID, err)
	}
	v.Tenants, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (KitTenant, error) {
		t := KitTenant{KitKey: KitKey{TestFlag: test, InstanceID: instanceID}}
		err := r.Scan(&t.TenantID, &t.OrderID, &t.TenantCode, &t.Name, &t.DomainName, &t.SyncedAt, &t.UpdatedAt)
		return t, err
	})
	if err != nil {
		return v, fmt.Errorf("read tenants of %s: %w", instanceID, err)
	}
	rows, err = s.Pool.Query(ctx, `SELECT tenant_id, app_id, client_id, client_secret, synced_at, updated_at
		FROM kit_applications WHERE test_flag = $1 AND instance_id = $2 ORDER BY tenant_id, app_id`, test, instanceID)
	if err != nil {
		return v, fmt.Errorf("read applications of %s: %w", instanceID, err)
	}
	v.Applications, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (KitApplication, error) {
		a := KitApplication{KitKey: KitKey{TestFlag: test, InstanceID: instanceID}}
		err := r.Scan(&a.TenantID, &a.AppID, &a.ClientID, &a.ClientSecret, &a.SyncedAt, &a.UpdatedAt)
		return a, err
	})
	if err != nil {
		return v, fmt.Errorf("read applications of %s: %w", instanceID, err)
	}
	rows, err = s.Pool.Query(ctx, `SELECT tenant_id, app_id, user_name, name, org_code, role, enabled, authorised, detail,
			synced_at, updated_at
		FROM kit_users WHERE test_flag = $1 AND instance_id = $2 ORDER BY tenant_id, app_id, user_name`, test, instanceID)
	if err != nil {
		return v, fmt.Errorf("read users of %s: %w", instanceID, err)
	}
	v.Users, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (KitUser, error) {
		u := KitUser{KitKey: KitKey{TestFlag: test, InstanceID: instanceID}}
		err := r.Scan(&u.TenantID, &u.AppID, &u.UserName, &u.Name, &u.OrgCode, &u.Role, &u.Enabled, &u.Authorised,
			&u.Detail, &u.SyncedAt, &u.UpdatedAt)
		return u, err
	})
	if err != nil {
		return v, fmt.Errorf("read users of %s: %w", instanceID, err)
	}
	rows, err = s.Pool.Query(ctx, `SELECT tenant_id, org_code, org_name, parent_code, detail, synced_at, updated_at
		FROM kit_orgs WHERE test_flag = $1 AND instance_id = $2 ORDER BY tenant_id, org_code`, test, instanceID)
	if err != nil {
		return v, fmt.Errorf("read org units of %s: %w", instanceID, err)
	}
	v.Orgs, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (KitOrg, error) {
		o := KitOrg{KitKey: KitKey{TestFlag: test, InstanceID: instanceID}}
		err := r.Scan(&o.TenantID, &o.OrgCode, &o.OrgName, &o.ParentCode, &o.Detail, &o.SyncedAt, &o.UpdatedAt)
		return o, err
	})
	if err != nil {
		return v, fmt.Errorf("read org units of %s: %w", instanceID, err)
	}
	return v, nil
}

// KitDelivery is one Kit change to deliver to the seller's systems.
type KitDelivery struct {
	DeliveryID  int64           `json:"deliveryId"`
	InstanceID  string          `json:"instanceId"`
	Kind        string          `json:"kind"` // tenant, application, users, org
	Call        string          `json:"call"`
	Flag        string          `json:"flag"`
	TenantID    string          `json:"tenantId"`
	Detail      json.RawMessage `json:"detail"`
	CreatedAt   time.Time       `json:"createdAt"`
	HandedAt    *time.Time      `json:"handedAt,omitempty"`
	DeliveredAt *time.Time      `json:"deliveredAt,omitempty"`
}

// AddKitDelivery records a change to deliver and returns its id.
func (s *Store) AddKitDelivery(ctx context.Context, d KitDelivery) (int64, error) {
	var id int64
	err := s.Pool.QueryRow(ctx, `INSERT INTO kit_deliveries (instance_id, kind, call, flag, tenant_id, detail)
		VALUES ($1, $2, $3, $4, $5, $6) RETURNING delivery_id`,
		d.InstanceID, d.Kind, d.Call, d.Flag, d.TenantID, []byte(d.Detail)).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("record Kit delivery for instance %s: %w", d.InstanceID, err)
	}
	return id, nil
}

// DropKitDelivery removes a delivery that is not to be sent (its change changed nothing, or the instance is gone).
func (s *Store) DropKitDelivery(ctx context.Context, id int64) error {
	if _, err := s.Pool.Exec(ctx, `DELETE FROM kit_deliveries WHERE delivery_id = $1 AND handed_at IS NULL`, id); err != nil {
		return fmt.Errorf("drop Kit delivery %d: %w", id, err)
	}
	return nil
}

// UnhandedKitDeliveries lists the instance's deliveries its workflow has not accepted yet, oldest first.
func (s *Store) UnhandedKitDeliveries(ctx context.Context, instanceID string) ([]KitDelivery, error) {
	rows, err := s.Pool.Query(ctx, `SELECT delivery_id, instance_id, kind, call, flag, tenant_id, detail, created_at,
			handed_at, delivered_at
		FROM kit_deliveries WHERE instance_id = $1 AND handed_at IS NULL ORDER BY delivery_id`, instanceID)
	if err != nil {
		return nil, fmt.Errorf("list Kit deliveries of %s: %w", instanceID, err)
	}
	out, err := pgx.CollectRows(rows, scanKitDelivery)
	if err != nil {
		return nil, fmt.Errorf("list Kit deliveries of %s: %w", instanceID, err)
	}
	return out, nil
}

func scanKitDelivery(r pgx.CollectableRow) (KitDelivery, error) {
	var d KitDelivery
	err := r.Scan(&d.DeliveryID, &d.InstanceID, &d.Kind, &d.Call, &d.Flag, &d.TenantID, &d.Detail, &d.CreatedAt,
		&d.HandedAt, &d.DeliveredAt)
	return d, err
}

// KitDeliveryHanded notes that the instance's workflow accepted the delivery.
func (s *Store) KitDeliveryHanded(ctx context.Context, id int64) error {
	if _, err := s.Pool.Exec(ctx, `UPDATE kit_deliveries SET handed_at = now() WHERE delivery_id = $1 AND handed_at IS NULL`, id); err != nil {
		return fmt.Errorf("mark Kit delivery %d handed: %w", id, err)
	}
	return nil
}

// KitDeliveryByID reads one delivery; found is false when it does not exist (dropped, or released with its
// instance).
func (s *Store) KitDeliveryByID(ctx context.Context, id int64) (d KitDelivery, found bool, err error) {
	rows, err := s.Pool.Query(ctx, `SELECT delivery_id, instance_id, kind, call, flag, tenant_id, detail, created_at,
			handed_at, delivered_at
		FROM kit_deliveries WHERE delivery_id = $1`, id)
	if err != nil {
		return d, false, fmt.Errorf("read Kit delivery %d: %w", id, err)
	}
	d, err = pgx.CollectOneRow(rows, scanKitDelivery)
	if errors.Is(err, pgx.ErrNoRows) {
		return d, false, nil
	}
	if err != nil {
		return d, false, fmt.Errorf("read Kit delivery %d: %w", id, err)
	}
	return d, true, nil
}

// KitDelivered notes that the seller's systems took the delivery.
func (s *Store) KitDelivered(ctx context.Context, id int64) error {
	if _, err := s.Pool.Exec(ctx, `UPDATE kit_deliveries SET delivered_at = now() WHERE delivery_id = $1 AND delivered_at IS NULL`, id); err != nil {
		return fmt.Errorf("mark Kit delivery %d delivered: %w", id, err)
	}
	return nil
}

// KitLoginTarget is what a unified-login callback needs about a tenant: its instance and that instance's
// lifecycle ("" while the workflow has not written its row), the auth-centre domain, and the application
// credential (the client secret as the marketplace's ciphertext).
type KitLoginTarget struct {
	InstanceID   string
	Lifecycle    string
	DomainName   string
	AppID        string
	ClientID     string
	ClientSecret string
}

// KitLogin finds the production application of tenantID, the most recently synced one if the tenant has several;
// found is false when the tenant or its application is unknown.
func (s *Store) KitLogin(ctx context.Context, tenantID string) (t KitLoginTarget, found bool, err error) {
	err = s.Pool.QueryRow(ctx, `
		SELECT t.instance_id, COALESCE(i.lifecycle, ''), t.domain_name, a.app_id, a.client_id, a.client_secret
		FROM kit_tenants t
		JOIN kit_applications a ON a.test_flag = t.test_flag AND a.instance_id = t.instance_id AND a.tenant_id = t.tenant_id
		LEFT JOIN instances i ON i.instance_id = t.instance_id
		WHERE NOT t.test_flag AND t.tenant_id = $1
		ORDER BY a.updated_at DESC, a.app_id LIMIT 1`, tenantID).
		Scan(&t.InstanceID, &t.Lifecycle, &t.DomainName, &t.AppID, &t.ClientID, &t.ClientSecret)
	if errors.Is(err, pgx.ErrNoRows) {
		return t, false, nil
	}
	if err != nil {
		return t, false, fmt.Errorf("find the application of tenant %s: %w", tenantID, err)
	}
	return t, true, nil
}

// KitUserByName reads one production user of an application; found is false when the user is unknown.
func (s *Store) KitUserByName(ctx context.Context, k KitKey, appID, userName string) (u KitUser, found bool, err error) {
	u = KitUser{KitKey: k, AppID: appID}
	err = s.Pool.QueryRow(ctx, `SELECT user_name, name, org_code, role, enabled, authorised, synced_at, updated_at
		FROM kit_users WHERE test_flag = $1 AND instance_id = $2 AND tenant_id = $3 AND app_id = $4 AND user_name = $5`,
		k.TestFlag, k.InstanceID, k.TenantID, appID, userName).
		Scan(&u.UserName, &u.Name, &u.OrgCode, &u.Role, &u.Enabled, &u.Authorised, &u.SyncedAt, &u.UpdatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return u, false, nil
	}
	if err != nil {
		return u, false, fmt.Errorf("read user %s of tenant %s: %w", userName, k.TenantID, err)
	}
	return u, true, nil
}
