// Package kit is the seller's side of KooGallery's joint-operation (联营) Kit interfaces: the marketplace syncs
// the buyer's tenant, application credential, authorised users and organisation to the seller
// (docs/koogallery.md, "Kit interfaces"). This package reads and validates the sync calls and decrypts the
// application's client secret; api/kit serves them and internal/store keeps the rows.
package kit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Kinds of Kit call: the last path segment of each endpoint.
const (
	KindTenant      = "tenantSync"
	KindApplication = "applicationSync"
	KindAuth        = "authSync"
	KindSingleOrg   = "singleOrgSync"
	KindAllOrg      = "allOrgSync"
)

// Kinds lists every Kit call.
func Kinds() []string {
	return []string{KindTenant, KindApplication, KindAuth, KindSingleOrg, KindAllOrg}
}

// Flag is a sync call's operation.
type Flag int

const (
	FlagDelete Flag = 0
	FlagAdd    Flag = 1
	FlagModify Flag = 2
	// FlagCancel cancels users' authorisation (authSync only): they stay known but may not log in.
	FlagCancel Flag = 3
)

func (f Flag) String() string {
	switch f {
	case FlagDelete:
		return "delete"
	case FlagAdd:
		return "add"
	case FlagModify:
		return "modify"
	case FlagCancel:
		return "cancel"
	}
	return strconv.Itoa(int(f))
}

// MaxUsers is the most users one authSync may carry.
const MaxUsers = 500

// shanghai is UTC+8, the zone of the Kit timeStamp (yyyyMMddHHmmssSSS). A fixed zone: China has no daylight
// saving time, and a fixed zone needs no tzdata.
var shanghai = time.FixedZone("UTC+8", 8*3600)

// Common are the fields every Kit call carries.
type Common struct {
	Kind       string
	InstanceID string // empty when the seller applies for a test credential (docs/koogallery.md, "tenantSync")
	OrderID    string
	TenantID   string
	Flag       Flag
	TestFlag   bool
	SyncedAt   time.Time // timeStamp, read as UTC+8
}

// Tenant is a tenantSync.
type Tenant struct {
	Common
	TenantCode string
	Name       string
	DomainName string
}

// Application is an applicationSync. ClientSecret is the marketplace's ciphertext, as received.
type Application struct {
	Common
	AppID        string
	ClientID     string
	ClientSecret string
}

// User is one entry of authSync's userList. Extra holds every member of the user object as sent.
type User struct {
	UserName string          `json:"userName"`
	Name     string          `json:"name"`
	OrgCode  string          `json:"orgCode"`
	Role     string          `json:"role"`
	Enable   bool            `json:"enable"`
	Raw      json.RawMessage `json:"-"`
}

// Auth is an authSync.
type Auth struct {
	Common
	AppID           string
	CurrentSyncTime string
	Users           []User
}

// Org is one organisation unit.
type Org struct {
	OrgCode    string          `json:"orgCode"`
	OrgName    string          `json:"orgName"`
	ParentCode string          `json:"parentCode"`
	Raw        json.RawMessage `json:"-"`
}

// Orgs is a singleOrgSync (one unit, Flag as sent) or an allOrgSync (the tenant's whole tree, replacing what was
// known; Flag is add).
type Orgs struct {
	Common
	Full bool
	Orgs []Org
}

// FieldError is an invalid field; it is answered 000002 with its text.
type FieldError struct {
	Field   string
	Problem string
}

func (e *FieldError) Error() string {
	if e.Field == "" {
		return e.Problem
	}
	return e.Field + ": " + e.Problem
}

type fields map[string]json.RawMessage

func decode(raw []byte) (fields, error) {
	var f fields
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&f); err != nil || f == nil {
		return nil, &FieldError{Problem: "the body must be one JSON object"}
	}
	return f, nil
}

// str reads a string member (numbers are accepted as their text). Absent or null is "".
func (f fields) str(name string, required bool, maxLen int) (string, error) {
	raw, ok := f[name]
	if !ok || string(raw) == "null" {
		if required {
			return "", &FieldError{name, "is required"}
		}
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		var n json.Number
		if err2 := json.Unmarshal(raw, &n); err2 != nil {
			return "", &FieldError{name, "must be a string"}
		}
		s = n.String()
	}
	s = strings.TrimSpace(s)
	if required && s == "" {
		return "", &FieldError{name, "must not be empty"}
	}
	if maxLen > 0 && utf8.RuneCountInString(s) > maxLen {
		return "", &FieldError{name, fmt.Sprintf("is longer than %d characters", maxLen)}
	}
	return s, nil
}

// integer reads an integer member sent as a number or a numeric string.
func (f fields) integer(name string) (int, error) {
	s, err := f.str(name, true, 4)
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, &FieldError{name, "must be an integer"}
	}
	return n, nil
}

func (f fields) common(kind string, maxFlag Flag) (Common, error) {
	c := Common{Kind: kind}
	var err error
	if c.InstanceID, err = f.str("instanceId", false, 64); err != nil {
		return c, err
	}
	if c.OrderID, err = f.str("orderId", false, 64); err != nil {
		return c, err
	}
	if c.TenantID, err = f.str("tenantId", true, 64); err != nil {
		return c, err
	}
	flag, err := f.integer("flag")
	if err != nil {
		return c, err
	}
	if flag < 0 || Flag(flag) > maxFlag {
		allowed := "0 (delete), 1 (add) or 2 (modify)"
		if maxFlag == FlagCancel {
			allowed = "0 (delete), 1 (add), 2 (modify) or 3 (cancel authorisation)"
		}
		return c, &FieldError{"flag", fmt.Sprintf("is %d; it must be %s", flag, allowed)}
	}
	c.Flag = Flag(flag)
	if _, ok := f["testFlag"]; ok {
		tf, err := f.integer("testFlag")
		if err != nil {
			return c, err
		}
		if tf != 0 && tf != 1 {
			return c, &FieldError{"testFlag", "must be 0 or 1"}
		}
		c.TestFlag = tf == 1
	}
	ts, err := f.str("timeStamp", true, 17)
	if err != nil {
		return c, err
	}
	if c.SyncedAt, err = ParseTimeStamp(ts); err != nil {
		return c, &FieldError{"timeStamp", err.Error()}
	}
	if c.InstanceID == "" && !c.TestFlag {
		return c, &FieldError{"instanceId", "is required unless testFlag is 1"}
	}
	return c, nil
}

// ParseTimeStamp reads a Kit timeStamp, yyyyMMddHHmmssSSS in UTC+8 (a 14-digit value without milliseconds is
// accepted too).
func ParseTimeStamp(s string) (time.Time, error) {
	layout := "20060102150405.000"
	switch len(s) {
	case 17:
		s = s[:14] + "." + s[14:]
	case 14:
		layout = "20060102150405"
	default:
		return time.Time{}, fmt.Errorf("%q must be yyyyMMddHHmmssSSS (UTC+8)", s)
	}
	t, err := time.ParseInLocation(layout, s, shanghai)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q must be yyyyMMddHHmmssSSS (UTC+8)", s)
	}
	return t.UTC(), nil
}

// ParseTenant reads a tenantSync body. On delete only the identifying fields are required.
func ParseTenant(raw []byte) (*Tenant, error) {
	f, err := decode(raw)
	if err != nil {
		return nil, err
	}
	c, err := f.common(KindTenant, FlagModify)
	if err != nil {
		return nil, err
	}
	t := &Tenant{Common: c}
	need := c.Flag != FlagDelete
	if t.TenantCode, err = f.str("tenantCode", c.Flag == FlagAdd, 64); err != nil {
		return nil, err
	}
	if t.Name, err = f.str("name", need, 255); err != nil {
		return nil, err
	}
	if t.DomainName, err = f.str("domainName", need, 255); err != nil {
		return nil, err
	}
	return t, nil
}

// ParseApplication reads an applicationSync body. The clientSecret is kept as received (ciphertext).
func ParseApplication(raw []byte) (*Application, error) {
	f, err := decode(raw)
	if err != nil {
		return nil, err
	}
	c, err := f.common(KindApplication, FlagModify)
	if err != nil {
		return nil, err
	}
	a := &Application{Common: c}
	need := c.Flag != FlagDelete
	if a.AppID, err = f.str("appId", true, 64); err != nil {
		return nil, err
	}
	if a.ClientID, err = f.str("clientId", need, 64); err != nil {
		return nil, err
	}
	if a.ClientSecret, err = f.str("clientSecret", need, 4096); err != nil {
		return nil, err
	}
	return a, nil
}

// ParseAuth reads an authSync body. userList may be a JSON array or a string holding one; it must name 1 to
// MaxUsers users, each with a userName, once.
func ParseAuth(raw []byte) (*Auth, error) {
	f, err := decode(raw)
	if err != nil {
		return nil, err
	}
	c, err := f.common(KindAuth, FlagCancel)
	if err != nil {
		return nil, err
	}
	a := &Auth{Common: c}
	if a.AppID, err = f.str("appId", true, 64); err != nil {
		return nil, err
	}
	if a.CurrentSyncTime, err = f.str("currentSyncTime", false, 64); err != nil {
		return nil, err
	}
	list, err := arrayField(f, "userList")
	if err != nil {
		return nil, err
	}
	if len(list) == 0 {
		return nil, &FieldError{"userList", "names no user"}
	}
	if len(list) > MaxUsers {
		return nil, &FieldError{"userList", fmt.Sprintf("has %d users; at most %d are accepted per call", len(list), MaxUsers)}
	}
	seen := make(map[string]bool, len(list))
	for i, item := range list {
		u, err := parseUser(item, c.Flag)
		if err != nil {
			return nil, &FieldError{fmt.Sprintf("userList[%d].%s", i, err.Field), err.Problem}
		}
		if seen[u.UserName] {
			return nil, &FieldError{fmt.Sprintf("userList[%d].userName", i), fmt.Sprintf("%q appears more than once", u.UserName)}
		}
		seen[u.UserName] = true
		a.Users = append(a.Users, u)
	}
	return a, nil
}

func parseUser(raw json.RawMessage, flag Flag) (User, *FieldError) {
	f, err := decode(raw)
	if err != nil {
		return User{}, &FieldError{"", "must be a JSON object"}
	}
	str := func(name string, required bool, maxLen int) (string, *FieldError) {
		s, err := f.str(name, required, maxLen)
		if err != nil {
			fe := err.(*FieldError)
			return "", fe
		}
		return s, nil
	}
	u := User{Raw: raw}
	var fe *FieldError
	if u.UserName, fe = str("userName", true, 128); fe != nil {
		return u, fe
	}
	need := flag == FlagAdd || flag == FlagModify
	if u.Name, fe = str("name", need, 255); fe != nil {
		return u, fe
	}
	if u.OrgCode, fe = str("orgCode", false, 128); fe != nil {
		return u, fe
	}
	if u.Role, fe = str("role", need, 16); fe != nil {
		return u, fe
	}
	if u.Role != "" && u.Role != "user" && u.Role != "admin" {
		return u, &FieldError{"role", fmt.Sprintf("is %q; it must be user or admin", u.Role)}
	}
	enable, fe := str("enable", false, 5)
	if fe != nil {
		return u, fe
	}
	switch strings.ToLower(enable) {
	case "", "true":
		u.Enable = true
	case "false":
		u.Enable = false
	default:
		return u, &FieldError{"enable", "must be true or false"}
	}
	return u, nil
}

// arrayField reads a member that is a JSON array or a string containing one.
func arrayField(f fields, name string) ([]json.RawMessage, error) {
	raw, ok := f[name]
	if !ok || string(raw) == "null" {
		return nil, &FieldError{name, "is required"}
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		raw = json.RawMessage(s)
	}
	var list []json.RawMessage
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, &FieldError{name, "must be a JSON array of objects, or a string holding one"}
	}
	return list, nil
}

// ParseOrgs reads a singleOrgSync (the unit's orgCode, orgName and parentCode at the top level) or an allOrgSync
// (orgList, an array or a string holding one, replacing the tenant's units).
func ParseOrgs(kind string, raw []byte) (*Orgs, error) {
	f, err := decode(raw)
	if err != nil {
		return nil, err
	}
	full := kind == KindAllOrg
	var c Common
	if full {
		// A full sync replaces the tenant's units, whatever flag it carries; a missing flag reads as add.
		if _, ok := f["flag"]; !ok {
			f["flag"] = json.RawMessage("1")
		}
	}
	if c, err = f.common(kind, FlagModify); err != nil {
		return nil, err
	}
	o := &Orgs{Common: c, Full: full}
	if !full {
		org, fe := parseOrg(raw, c.Flag)
		if fe != nil {
			return nil, fe
		}
		o.Orgs = []Org{org}
		return o, nil
	}
	list, err := arrayField(f, "orgList")
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for i, item := range list {
		org, fe := parseOrg(item, FlagAdd)
		if fe != nil {
			return nil, &FieldError{fmt.Sprintf("orgList[%d].%s", i, fe.Field), fe.Problem}
		}
		if seen[org.OrgCode] {
			return nil, &FieldError{fmt.Sprintf("orgList[%d].orgCode", i), fmt.Sprintf("%q appears more than once", org.OrgCode)}
		}
		seen[org.OrgCode] = true
		o.Orgs = append(o.Orgs, org)
	}
	return o, nil
}

func parseOrg(raw json.RawMessage, flag Flag) (Org, *FieldError) {
	f, err := decode(raw)
	if err != nil {
		return Org{}, &FieldError{"", "must be a JSON object"}
	}
	o := Org{Raw: raw}
	for _, p := range []struct {
		name     string
		dst      *string
		required bool
	}{{"orgCode", &o.OrgCode, true}, {"orgName", &o.OrgName, flag != FlagDelete}, {"parentCode", &o.ParentCode, false}} {
		s, err := f.str(p.name, p.required, 255)
		if err != nil {
			return o, err.(*FieldError)
		}
		*p.dst = s
	}
	return o, nil
}
