package gateway_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/kooflow/kooflow/internal/config"
	"github.com/kooflow/kooflow/internal/instance"
	"github.com/kooflow/kooflow/internal/koogallery"
	"github.com/kooflow/kooflow/internal/refusal"
	"github.com/kooflow/kooflow/internal/store"
	"github.com/kooflow/kooflow/internal/testenv"
	"github.com/kooflow/kooflow/internal/teststack"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// contractState is what the contract workflow counts, so a test can see exactly which steps took effect.
type contractState struct {
	Lifecycle   instance.Lifecycle `json:"lifecycle"`
	NewInstance int                `json:"newInstance"`
	Refreshes   int                `json:"refreshes"`
	Freezes     int                `json:"freezes"`
	Unfreezes   int                `json:"unfreezes"`
	Upgrades    int                `json:"upgrades"`
	Expire      time.Time          `json:"expire"`
	OrderID     string             `json:"orderId"`
}

// contractWorkflow implements the gateway's side of the instance contract (instance/): the Update and Query
// names, payloads, refusals, and closing after release. It is the smallest workflow that lets the gateway be
// tested against real Temporal semantics (starts from the inbox, Update ID deduplication, ID reuse policy, closed
// runs) independently of the lifecycle workflow's business rules. Like the real one it is idempotent by state.
func contractWorkflow(ctx workflow.Context, in instance.StartInput) error {
	st := contractState{Lifecycle: instance.LifecycleProvisioning, OrderID: in.OrderID}
	_ = workflow.SetQueryHandler(ctx, instance.QueryState, func() (contractState, error) { return st, nil })
	_ = workflow.SetQueryHandler(ctx, instance.QueryChangeCheck, func(r instance.ChangeCheckRequest) (instance.ChangeCheckResult, error) {
		if r.LinearValue > 0 && r.LinearValue < 10 {
			return instance.ChangeCheckResult{Reason: "the instance has 10 users; the target allows only " + strconv.FormatInt(r.LinearValue, 10)}, nil
		}
		return instance.ChangeCheckResult{Allowed: true}, nil
	})
	_ = workflow.SetUpdateHandler(ctx, instance.UpdateNewInstance,
		func(ctx workflow.Context, r instance.NewInstanceRequest) (instance.NewInstanceResult, error) {
			st.NewInstance++
			st.Lifecycle = instance.LifecycleActive
			return instance.NewInstanceResult{InstanceID: in.InstanceID}, nil
		})
	_ = workflow.SetUpdateHandlerWithOptions(ctx, instance.UpdateRefreshInstance,
		func(ctx workflow.Context, r instance.RefreshRequest) error {
			st.Refreshes++
			st.Expire = r.ExpireTime
			return nil
		}, workflow.UpdateHandlerOptions{})
	_ = workflow.SetUpdateHandler(ctx, instance.UpdateStatus, func(ctx workflow.Context, r instance.StatusRequest) error {
		switch {
		case r.Status == instance.StatusFreeze && st.Lifecycle != instance.LifecycleFrozen:
			st.Freezes++
			st.Lifecycle = instance.LifecycleFrozen
		case r.Status == instance.StatusUnfreeze && st.Lifecycle == instance.LifecycleFrozen:
			st.Unfreezes++
			st.Lifecycle = instance.LifecycleActive
		}
		return nil
	})
	_ = workflow.SetUpdateHandlerWithOptions(ctx, instance.UpdateUpgrade,
		func(ctx workflow.Context, r instance.UpgradeRequest) error {
			st.Upgrades++
			return nil
		}, workflow.UpdateHandlerOptions{Validator: func(ctx workflow.Context, r instance.UpgradeRequest) error {
			if st.Lifecycle == instance.LifecycleFrozen {
				return refusal.New("000005", "the instance is frozen; renew and unfreeze it before upgrading").Temporal()
			}
			return nil
		}})
	_ = workflow.SetUpdateHandler(ctx, instance.UpdateRelease, func(ctx workflow.Context, r instance.ReleaseRequest) error {
		st.Lifecycle = instance.LifecycleReleased
		return nil
	})
	return workflow.Await(ctx, func() bool {
		return st.Lifecycle == instance.LifecycleReleased && workflow.AllHandlersFinished(ctx)
	})
}

const (
	accessKey    = "gateway-integration-access-key"
	consoleToken = "gateway-integration-console-token"
)

type env struct {
	t    *testing.T
	url  string
	pool *pgxpool.Pool
	tc   client.Client
	cfg  config.Config
	st   *teststack.Stack
}

// newEnv runs the real router (api.New) against a fresh database and the shared Temporal dev server, with the
// contract workflow registered on a task queue of this test. worker=false leaves the queue without a worker.
func newEnv(t *testing.T, withWorker bool, deadline time.Duration) *env {
	t.Helper()
	return newEnvWith(t, withWorker, deadline, nil)
}

// newEnvWith is newEnv with a change to the configuration.
func newEnvWith(t *testing.T, withWorker bool, deadline time.Duration, tweak func(*config.Config)) *env {
	t.Helper()
	cfg := teststack.Config(t, map[string]string{
		config.EnvConsoleTokens: "ops:" + consoleToken,
		config.EnvAccessKey:     accessKey,
	})
	cfg.TaskQueue = testenv.TaskQueue(t)
	if deadline > 0 {
		cfg.Deadline = deadline
	}
	if tweak != nil {
		tweak(&cfg)
	}
	st := teststack.Start(t, cfg, teststack.Options{NoWorker: true})
	if withWorker {
		w := sdkworker.New(st.Temporal, cfg.TaskQueue, sdkworker.Options{})
		w.RegisterWorkflowWithOptions(contractWorkflow, workflow.RegisterOptions{Name: instance.WorkflowType})
		if err := w.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(w.Stop)
	}
	return &env{t: t, url: st.URL, pool: st.Pool, tc: st.Temporal, cfg: cfg, st: st}
}

type reply struct {
	raw  []byte
	resp koogallery.Response
}

// call signs body now with a fresh nonce, as the marketplace does on every delivery including retries.
func (e *env) call(body string) reply {
	e.t.Helper()
	q, err := koogallery.SignQuery(accessKey, []byte(body), time.Now(), koogallery.NewNonce())
	if err != nil {
		e.t.Fatal(err)
	}
	return e.send(q.Encode(), body)
}

func (e *env) send(query, body string) reply {
	e.t.Helper()
	resp, err := http.Post(e.url+"/koogallery/v2?"+query, "application/json;charset=utf8", strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		e.t.Fatalf("HTTP %d: %s", resp.StatusCode, raw)
	}
	if got, want := resp.Header.Get("Body-Sign"), koogallery.BodySignHeader(accessKey, raw); got != want {
		e.t.Fatalf("Body-Sign %q does not sign %s", got, raw)
	}
	var r koogallery.Response
	if err := json.Unmarshal(raw, &r); err != nil {
		e.t.Fatalf("%s: %v", raw, err)
	}
	return reply{raw: raw, resp: r}
}

func (r reply) want(t *testing.T, code string) reply {
	t.Helper()
	if r.resp.ResultCode != code {
		t.Fatalf("resultCode %s (%s), want %s", r.resp.ResultCode, r.resp.ResultMsg, code)
	}
	return r
}

func (e *env) state(instanceID string) contractState {
	e.t.Helper()
	v, err := e.tc.QueryWorkflow(context.Background(), instance.WorkflowID(instanceID), "", instance.QueryState)
	if err != nil {
		e.t.Fatalf("query state of %s: %v", instanceID, err)
	}
	var st contractState
	if err := v.Get(&st); err != nil {
		e.t.Fatal(err)
	}
	return st
}

// runs counts the executions (runs) of an instance's workflow in Temporal's visibility.
func (e *env) runs(instanceID string) int {
	e.t.Helper()
	ctx := context.Background()
	n := 0
	var token []byte
	for {
		resp, err := e.tc.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Query:         "WorkflowId = '" + instance.WorkflowID(instanceID) + "'",
			NextPageToken: token,
		})
		if err != nil {
			e.t.Fatal(err)
		}
		n += len(resp.Executions)
		if token = resp.NextPageToken; len(token) == 0 {
			return n
		}
	}
}

// waitStarted waits until the inbox has started the instance's workflow and returns its description.
func (e *env) waitStarted(instanceID string) *workflowservice.DescribeWorkflowExecutionResponse {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		desc, err := e.tc.DescribeWorkflowExecution(context.Background(), instance.WorkflowID(instanceID), "")
		if err == nil {
			return desc
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("the workflow of instance %s was not started within 10 s: %v", instanceID, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func newInstanceBody(order, line string) string {
	return string(koogallery.NewInstanceBody(order, line, koogallery.NewNonce()[:32], false))
}

func TestNewInstanceRetriesMakeOneInstance(t *testing.T) {
	e := newEnv(t, true, 0)
	order := testenv.Unique("CS")
	line := order + "-000001"
	want := instance.ID(order, line)
	for i := 0; i < 3; i++ {
		// Each retry carries a new businessId, nonce and timestamp.
		r := e.call(newInstanceBody(order, line)).want(t, koogallery.ResultInProgress)
		if r.resp.InstanceID != want {
			t.Fatalf("attempt %d: instanceId %s, want %s", i+1, r.resp.InstanceID, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
	// The answers came from the inbox; the workflow is started from it right after, once.
	desc := e.waitStarted(want)
	st := e.state(want)
	if st.OrderID != order {
		t.Fatalf("the workflow started for order %q, want %s", st.OrderID, order)
	}
	var inboxRows int
	if err := e.pool.QueryRow(context.Background(), `SELECT count(*) FROM koogallery_inbox WHERE order_id = $1`, order).Scan(&inboxRows); err != nil || inboxRows != 1 {
		t.Fatalf("inbox rows for the order: %d (%v), want 1", inboxRows, err)
	}
	if desc.WorkflowExecutionInfo.Type.Name != instance.WorkflowType {
		t.Fatalf("workflow type %s", desc.WorkflowExecutionInfo.Type.Name)
	}
	sa := desc.WorkflowExecutionInfo.SearchAttributes.GetIndexedFields()
	for _, k := range []string{"OrderId", "InstanceId", "LifecycleState", "TestFlag"} {
		if sa[k] == nil {
			t.Errorf("search attribute %s missing at start", k)
		}
	}
	if n := e.runs(want); n != 1 {
		t.Fatalf("%d runs of the instance workflow, want 1", n)
	}
	// Every delivery is in the message log with the instanceId it was answered with.
	var logged int
	if err := e.pool.QueryRow(context.Background(),
		`SELECT count(*) FROM koogallery_messages WHERE activity = 'newInstance' AND instance_ids @> ARRAY[$1]::text[] AND result_code = '000004'`,
		want).Scan(&logged); err != nil || logged != 3 {
		t.Fatalf("message log holds %d newInstance calls for the instance (%v), want 3", logged, err)
	}
}

// started creates an instance through the gateway and returns its id.
func (e *env) started() (order, instanceID string) {
	e.t.Helper()
	order = testenv.Unique("CS")
	r := e.call(newInstanceBody(order, order+"-000001")).want(e.t, koogallery.ResultInProgress)
	e.waitStarted(r.resp.InstanceID)
	return order, r.resp.InstanceID
}

func TestRetriesOfEveryActivityApplyOnce(t *testing.T) {
	e := newEnv(t, true, 0)
	_, id := e.started()

	for i := 0; i < 3; i++ {
		e.call(`{"activity":"refreshInstance","scene":"RENEWAL","orderId":"R1","orderLineId":"R1-000001","instanceId":"`+id+`","expireTime":"20271231155959"}`).
			want(t, koogallery.ResultSuccess)
	}
	if st := e.state(id); st.Refreshes != 1 || !st.Expire.Equal(time.Date(2027, 12, 31, 15, 59, 59, 0, time.UTC)) {
		t.Fatalf("after 3 deliveries of one renewal: %+v", st)
	}
	// A different renewal order is a different step.
	e.call(`{"activity":"refreshInstance","scene":"RENEWAL","orderId":"R2","orderLineId":"R2-000001","instanceId":"`+id+`","expireTime":"20281231155959000"}`).
		want(t, koogallery.ResultSuccess)
	if st := e.state(id); st.Refreshes != 2 {
		t.Fatalf("a second renewal order: %+v", st)
	}

	for i := 0; i < 3; i++ {
		e.call(`{"activity":"upgradeInstance","instanceId":"`+id+`","orderId":"C1","orderLineId":"C1-000001"}`).want(t, koogallery.ResultSuccess)
	}
	if st := e.state(id); st.Upgrades != 1 {
		t.Fatalf("after 3 deliveries of one upgrade: %+v", st)
	}

	// Freeze retried three times freezes once; unfreeze and a later freeze in the same run are real steps.
	for i := 0; i < 3; i++ {
		e.call(`{"activity":"updateInstanceStatus","instanceId":"`+id+`","status":"FREEZE"}`).want(t, koogallery.ResultSuccess)
	}
	if st := e.state(id); st.Freezes != 1 || st.Lifecycle != instance.LifecycleFrozen {
		t.Fatalf("after 3 FREEZE deliveries: %+v", st)
	}
	// A refused step reaches the marketplace with the workflow's code and reason, and changes nothing.
	r := e.call(`{"activity":"upgradeInstance","instanceId":"`+id+`","orderId":"C2","orderLineId":"C2-000001"}`).want(t, "000005")
	if !strings.Contains(r.resp.ResultMsg, "frozen") {
		t.Fatalf("refusal message %q", r.resp.ResultMsg)
	}
	for i := 0; i < 2; i++ {
		e.call(`{"activity":"updateInstanceStatus","instanceId":"`+id+`","status":"UNFREEZE"}`).want(t, koogallery.ResultSuccess)
	}
	e.call(`{"activity":"updateInstanceStatus","instanceId":"`+id+`","status":"FREEZE"}`).want(t, koogallery.ResultSuccess)
	if st := e.state(id); st.Freezes != 2 || st.Unfreezes != 1 || st.Upgrades != 1 {
		t.Fatalf("FREEZE, UNFREEZE×2, FREEZE: %+v", st)
	}

	// changeInstanceCheck is a Query: allowed, refused with a reason, and never a state change.
	e.call(`{"activity":"changeInstanceCheck","instanceId":"`+id+`","productInfo":{"skuCode":"big","linearValue":50}}`).want(t, koogallery.ResultSuccess)
	r = e.call(`{"activity":"changeInstanceCheck","instanceId":"`+id+`","productInfo":{"skuCode":"small","linearValue":5}}`).want(t, koogallery.ResultInvalidParams)
	if !strings.Contains(r.resp.ResultMsg, "allows only 5") {
		t.Fatalf("refusal message %q", r.resp.ResultMsg)
	}

	// Release three times: the first closes the workflow, the retries find it closed and still succeed.
	for i := 0; i < 3; i++ {
		e.call(`{"activity":"releaseInstance","instanceId":"`+id+`"}`).want(t, koogallery.ResultSuccess)
	}
	desc, err := e.tc.DescribeWorkflowExecution(context.Background(), instance.WorkflowID(id), "")
	if err != nil {
		t.Fatal(err)
	}
	if s := desc.WorkflowExecutionInfo.Status.String(); s != "Completed" {
		t.Fatalf("workflow %s after release", s)
	}
	// After release: other steps find no instance.
	e.call(`{"activity":"updateInstanceStatus","instanceId":"`+id+`","status":"UNFREEZE"}`).want(t, koogallery.ResultNotFound)
	e.call(`{"activity":"refreshInstance","scene":"RENEWAL","orderId":"R3","orderLineId":"R3-000001","instanceId":"`+id+`","expireTime":"20291231155959"}`).
		want(t, koogallery.ResultNotFound)
}

func TestUnknownInstances(t *testing.T) {
	e := newEnv(t, true, 0)
	ghost := instance.ID("NOSUCHORDER", "NOSUCHORDER-000001")
	e.call(`{"activity":"releaseInstance","instanceId":"`+ghost+`"}`).want(t, koogallery.ResultSuccess)
	e.call(`{"activity":"updateInstanceStatus","instanceId":"`+ghost+`","status":"FREEZE"}`).want(t, koogallery.ResultNotFound)
	e.call(`{"activity":"upgradeInstance","instanceId":"`+ghost+`","orderId":"C","orderLineId":"C-1"}`).want(t, koogallery.ResultNotFound)
	e.call(`{"activity":"changeInstanceCheck","instanceId":"`+ghost+`","productInfo":{"skuCode":"s"}}`).want(t, koogallery.ResultNotFound)
	e.call(`{"activity":"queryInstance","instanceId":"`+ghost+`"}`).want(t, koogallery.ResultNotFound)
	if n := e.runs(ghost); n != 0 {
		t.Fatalf("a call for an unknown instance created %d workflows", n)
	}
}

func TestNewInstanceAfterReleaseAnswersFromReadModel(t *testing.T) {
	e := newEnv(t, true, 0)
	order, id := e.started()
	e.call(`{"activity":"releaseInstance","instanceId":"`+id+`"}`).want(t, koogallery.ResultSuccess)
	// The lifecycle workflow keeps the read model; here the test writes the row it would have written.
	if _, err := e.pool.Exec(context.Background(), `INSERT INTO instances (instance_id, workflow_id, order_id, order_line_id, lifecycle, provisioned_at, released_at)
		VALUES ($1, $2, $3, $4, 'RELEASED', now(), now())`, id, instance.WorkflowID(id), order, order+"-000001"); err != nil {
		t.Fatal(err)
	}
	r := e.call(newInstanceBody(order, order+"-000001")).want(t, koogallery.ResultSuccess)
	if r.resp.InstanceID != id {
		t.Fatalf("instanceId %s after release, want %s", r.resp.InstanceID, id)
	}
	if n := e.runs(id); n != 1 {
		t.Fatalf("the released instance's workflow ran %d times, want 1 (REJECT_DUPLICATE)", n)
	}
}

func TestForgedStaleAndReplayedCallsChangeNothing(t *testing.T) {
	e := newEnv(t, true, 0)
	_, id := e.started()
	before := e.state(id)
	body := `{"activity":"updateInstanceStatus","instanceId":"` + id + `","status":"FREEZE"}`

	stale, _ := koogallery.SignQuery(accessKey, []byte(body), time.Now().Add(-61*time.Second), koogallery.NewNonce())
	e.send(stale.Encode(), body).want(t, koogallery.ResultAuthFailed)

	flipped, _ := koogallery.SignQuery(accessKey, []byte(body), time.Now(), koogallery.NewNonce())
	sig, _ := hex.DecodeString(flipped.Get("signature"))
	sig[0] ^= 0x80 // one bit of 256
	flipped.Set("signature", hex.EncodeToString(sig))
	e.send(flipped.Encode(), body).want(t, koogallery.ResultAuthFailed)

	// A new order's newInstance with a flipped bit must not create anything either.
	ghostOrder := testenv.Unique("CS")
	nb := newInstanceBody(ghostOrder, ghostOrder+"-000001")
	q, _ := koogallery.SignQuery(accessKey, []byte(nb), time.Now(), koogallery.NewNonce())
	sig, _ = hex.DecodeString(q.Get("signature"))
	sig[31] ^= 0x01
	q.Set("signature", hex.EncodeToString(sig))
	e.send(q.Encode(), nb).want(t, koogallery.ResultAuthFailed)
	if n := e.runs(instance.ID(ghostOrder, ghostOrder+"-000001")); n != 0 {
		t.Fatalf("a forged newInstance started %d workflows", n)
	}

	if after := e.state(id); after != before {
		t.Fatalf("state changed by refused calls: %+v → %+v", before, after)
	}

	// A replay of an accepted delivery (same nonce) is refused, and so is a replay to another API process
	// sharing the database: the replay cache is in PostgreSQL.
	unfreeze := `{"activity":"updateInstanceStatus","instanceId":"` + id + `","status":"UNFREEZE"}`
	freezeQ, _ := koogallery.SignQuery(accessKey, []byte(body), time.Now(), koogallery.NewNonce())
	e.send(freezeQ.Encode(), body).want(t, koogallery.ResultSuccess)
	e.call(unfreeze).want(t, koogallery.ResultSuccess)
	frozenOnce := e.state(id)
	e.send(freezeQ.Encode(), body).want(t, koogallery.ResultAuthFailed)
	other := e.st.SecondAPI(t)
	resp, err := http.Post(other+"/koogallery/v2?"+freezeQ.Encode(), "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Contains(raw, []byte(`"resultCode":"000001"`)) {
		t.Fatalf("replay to a second API process: %s", raw)
	}
	if after := e.state(id); after != frozenOnce || after.Lifecycle != instance.LifecycleActive {
		t.Fatalf("replays changed the state: %+v → %+v", frozenOnce, after)
	}

	// The message log shows each refused call with its verification result.
	rows, err := e.pool.Query(context.Background(), `SELECT verification FROM koogallery_messages WHERE result_code = '000001' ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	var verdicts []string
	for rows.Next() {
		var v string
		_ = rows.Scan(&v)
		verdicts = append(verdicts, v)
	}
	rows.Close()
	want := "stale_timestamp,bad_signature,bad_signature,replayed_nonce,replayed_nonce"
	if strings.Join(verdicts, ",") != want {
		t.Fatalf("logged verdicts %v, want %s", verdicts, want)
	}
}

func TestNewInstanceDeadlineWithoutWorker(t *testing.T) {
	// No worker polls the task queue. newInstance does not wait for the workflow: once the order is durable in
	// the inbox it answers 000004 with the instanceId, and the inbox starts the workflow (a start needs no
	// worker).
	e := newEnv(t, false, 1500*time.Millisecond)
	order := testenv.Unique("CS")
	start := time.Now()
	r := e.call(newInstanceBody(order, order+"-000001")).want(t, koogallery.ResultInProgress)
	// Waiting for the worker would answer at the 1.5 s deadline; the inbox answers long before it.
	if took := time.Since(start); took > time.Second {
		t.Fatalf("answered after %s; newInstance must not wait for Temporal", took)
	}
	if r.resp.InstanceID != instance.ID(order, order+"-000001") {
		t.Fatalf("instanceId %s", r.resp.InstanceID)
	}
	e.waitStarted(r.resp.InstanceID)
	if n := e.runs(r.resp.InstanceID); n != 1 {
		t.Fatalf("%d workflows", n)
	}
	var detail string
	_ = e.pool.QueryRow(context.Background(), `SELECT error_detail FROM koogallery_messages ORDER BY id DESC LIMIT 1`).Scan(&detail)
	if !strings.Contains(detail, "recorded in the inbox") {
		t.Fatalf("logged detail %q", detail)
	}
	// An Update to an existing workflow that cannot answer in time is 000005: the marketplace retries.
	start = time.Now()
	e.call(`{"activity":"upgradeInstance","instanceId":"`+r.resp.InstanceID+`","orderId":"C","orderLineId":"C-1"}`).want(t, koogallery.ResultInternal)
	if took := time.Since(start); took > 1700*time.Millisecond {
		t.Fatalf("answered after %s with a 1.5 s deadline", took)
	}
}

func TestQueryInstanceFromReadModel(t *testing.T) {
	e := newEnv(t, false, 0)
	ctx := context.Background()
	ins := func(id, lifecycle string, app any) {
		var appJSON []byte
		if app != nil {
			appJSON, _ = json.Marshal(app)
		}
		if _, err := e.pool.Exec(ctx, `INSERT INTO instances (instance_id, workflow_id, order_id, order_line_id, lifecycle, app_info)
			VALUES ($1, $2, $1, $1 || '-1', $3, $4)`, id, instance.WorkflowID(id), lifecycle, appJSON); err != nil {
			t.Fatal(err)
		}
	}
	ins("i-ready", "ACTIVE", map[string]string{"frontEndUrl": "https://crm.example/t/42", "adminUrl": "https://crm.example/admin",
		"userName": "admin", "password": "S3cret!", "memo": "首次登录请修改密码"})
	ins("i-busy", "PROVISIONING", nil)

	r := e.call(`{"activity":"queryInstance","instanceId":"i-ready"}`).want(t, koogallery.ResultSuccess)
	want := `{"resultCode":"000000","resultMsg":"success","info":[{"instanceId":"i-ready","appInfo":{"frontEndUrl":"https://crm.example/t/42","adminUrl":"https://crm.example/admin","userName":"admin","password":"S3cret!","memo":"\u9996\u6b21\u767b\u5f55\u8bf7\u4fee\u6539\u5bc6\u7801"}}]}`
	if string(r.raw) != want {
		t.Fatalf("answer\n%s\nwant\n%s", r.raw, want)
	}
	r = e.call(`{"activity":"queryInstance","instanceId":"i-busy,i-ready,i-none"}`).want(t, koogallery.ResultInProgress)
	if len(r.resp.Info) != 2 || r.resp.Info[0].InstanceID != "i-busy" || r.resp.Info[0].AppInfo != nil || r.resp.Info[1].AppInfo == nil {
		t.Fatalf("answer %s", r.raw)
	}
	ids := make([]string, 100)
	for i := range ids {
		ids[i] = "i-" + strconv.Itoa(i)
	}
	ids[57] = "i-ready"
	r = e.call(`{"activity":"queryInstance","instanceId":"`+strings.Join(ids, ",")+`"}`).want(t, koogallery.ResultSuccess)
	if len(r.resp.Info) != 1 || r.resp.Info[0].InstanceID != "i-ready" {
		t.Fatalf("answer %s", r.raw)
	}
	e.call(`{"activity":"queryInstance","instanceId":"`+strings.Join(ids, ",")+`,i-101"}`).want(t, koogallery.ResultInvalidParams)
}

// console calls the console API.
func (e *env) console(path string, out any) int {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.url+"/console/v1"+path, nil)
	req.Header.Set("Authorization", "Bearer "+consoleToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			e.t.Fatal(err)
		}
	}
	return resp.StatusCode
}

type page struct {
	Items []struct {
		ID           int64    `json:"id"`
		Activity     string   `json:"activity"`
		ResultCode   string   `json:"resultCode"`
		Failed       bool     `json:"failed"`
		Verification string   `json:"verification"`
		InstanceIDs  []string `json:"instanceIds"`
		OrderID      string   `json:"orderId"`
		LatencyMs    float64  `json:"latencyMs"`
	} `json:"items"`
	NextCursor string `json:"nextCursor"`
}

func TestMessageLogConsole(t *testing.T) {
	e := newEnv(t, true, 0)
	order, id := e.started()
	e.call(`{"activity":"updateInstanceStatus","instanceId":"`+id+`","status":"FREEZE"}`).want(t, koogallery.ResultSuccess)
	e.call(`{"activity":"upgradeInstance","instanceId":"`+id+`","orderId":"C9","orderLineId":"C9-1"}`).want(t, "000005")
	e.send("signature=00&timestamp=1&nonce=n", `{"activity":"releaseInstance","instanceId":"`+id+`"}`).want(t, koogallery.ResultAuthFailed)
	e.call(`{"activity":"bogus"}`).want(t, koogallery.ResultInvalidParams)
	e.call(`{"activity":"queryInstance","instanceId":"nope"}`).want(t, koogallery.ResultNotFound)

	var all page
	if s := e.console("/koogallery/messages", &all); s != http.StatusOK {
		t.Fatalf("list: HTTP %d", s)
	}
	if len(all.Items) != 6 {
		t.Fatalf("%d messages, want 6", len(all.Items))
	}
	// Failed first (newest first within each group).
	var codes []string
	for _, it := range all.Items {
		codes = append(codes, it.ResultCode)
	}
	if got := strings.Join(codes, ","); got != "000003,000002,000001,000005,000000,000004" {
		t.Fatalf("order %s", got)
	}

	var failed page
	e.console("/koogallery/messages?failed=true&limit=2", &failed)
	if len(failed.Items) != 2 || failed.NextCursor == "" || !failed.Items[0].Failed {
		t.Fatalf("first page %+v", failed)
	}
	var rest page
	e.console("/koogallery/messages?failed=true&limit=2&cursor="+url.QueryEscape(failed.NextCursor), &rest)
	if len(rest.Items) != 2 || rest.NextCursor != "" || rest.Items[0].ID == failed.Items[1].ID {
		t.Fatalf("second page %+v", rest)
	}

	var byInstance page
	e.console("/koogallery/messages?instanceId="+id, &byInstance)
	if len(byInstance.Items) != 4 { // newInstance (answered id), FREEZE, refused upgrade, forged release
		t.Fatalf("%d messages for the instance, want 4: %+v", len(byInstance.Items), byInstance.Items)
	}
	var byOrder page
	e.console("/koogallery/messages?orderId="+order+"&activity=newInstance&resultCode=000004", &byOrder)
	if len(byOrder.Items) != 1 || byOrder.Items[0].InstanceIDs[0] != id {
		t.Fatalf("by order %+v", byOrder)
	}
	var window page
	e.console("/koogallery/messages?from="+url.QueryEscape(time.Now().Add(time.Hour).Format(time.RFC3339)), &window)
	if len(window.Items) != 0 {
		t.Fatalf("future window returned %d", len(window.Items))
	}

	// One message in full, with the exact bytes both signatures cover.
	forged := all.Items[2]
	var detail map[string]any
	if s := e.console("/koogallery/messages/"+strconv.FormatInt(forged.ID, 10), &detail); s != http.StatusOK {
		t.Fatalf("detail: HTTP %d", s)
	}
	if detail["verification"] != "bad_signature" && detail["verification"] != "malformed_credentials" {
		t.Fatalf("detail %v", detail)
	}
	if detail["rawQuery"] != "signature=00&timestamp=1&nonce=n" || !strings.Contains(detail["requestBody"].(string), "releaseInstance") {
		t.Fatalf("detail %v", detail)
	}
	respBody := detail["responseBody"].(string)
	if detail["bodySign"] != koogallery.BodySignHeader(accessKey, []byte(respBody)) {
		t.Fatalf("stored Body-Sign does not sign the stored response")
	}

	for path, status := range map[string]int{
		"/koogallery/messages?resultCode=1":     http.StatusBadRequest,
		"/koogallery/messages?activity=nope":    http.StatusBadRequest,
		"/koogallery/messages?limit=0":          http.StatusBadRequest,
		"/koogallery/messages?cursor=garbage!!": http.StatusBadRequest,
		"/koogallery/messages?from=yesterday":   http.StatusBadRequest,
		"/koogallery/messages/abc":              http.StatusBadRequest,
		"/koogallery/messages/999999":           http.StatusNotFound,
	} {
		if s := e.console(path, nil); s != status {
			t.Errorf("%s: HTTP %d, want %d", path, s, status)
		}
	}
	// The log is append-only.
	if _, err := e.pool.Exec(context.Background(), `UPDATE koogallery_messages SET result_code = '000000'`); err == nil {
		t.Fatal("the message log accepted an UPDATE")
	}
	if _, err := e.pool.Exec(context.Background(), `DELETE FROM koogallery_messages`); err == nil {
		t.Fatal("the message log accepted a DELETE")
	}
}

func TestNewInstanceOnClosedRunWithoutItsUpdate(t *testing.T) {
	// The workflow was started from its StartInput alone (as the inbox starts it, with no newInstance Update),
	// then the instance was released and the run closed. A late newInstance is rejected by REJECT_DUPLICATE and
	// answered from the read model with the same instanceId.
	e := newEnv(t, true, 0)
	ctx := context.Background()
	order := testenv.Unique("CS")
	id := instance.ID(order, order+"-000001")
	run, err := e.tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: instance.WorkflowID(id), TaskQueue: e.cfg.TaskQueue},
		instance.WorkflowType, instance.StartInput{InstanceID: id, OrderID: order, OrderLineID: order + "-000001"})
	if err != nil {
		t.Fatal(err)
	}
	e.call(`{"activity":"releaseInstance","instanceId":"`+id+`"}`).want(t, koogallery.ResultSuccess)
	if err := run.Get(ctx, nil); err != nil {
		t.Fatal(err)
	}
	// The late newInstance is recorded and answered "in progress"; its dispatch finds the closed run, which
	// REJECT_DUPLICATE keeps closed: no second run.
	e.call(newInstanceBody(order, order+"-000001")).want(t, koogallery.ResultInProgress)
	deadline := time.Now().Add(10 * time.Second)
	for {
		var dispatched bool
		if err := e.pool.QueryRow(ctx, `SELECT dispatched_at IS NOT NULL FROM koogallery_inbox WHERE instance_id = $1`, id).Scan(&dispatched); err != nil {
			t.Fatal(err)
		}
		if dispatched {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the late newInstance was never dispatched")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := e.runs(id); n != 1 {
		t.Fatalf("%d runs after the late newInstance, want 1", n)
	}
	if _, err := e.pool.Exec(ctx, `INSERT INTO instances (instance_id, workflow_id, order_id, order_line_id, lifecycle, released_at)
		VALUES ($1, $2, $3, $4, 'RELEASED', now())`, id, instance.WorkflowID(id), order, order+"-000001"); err != nil {
		t.Fatal(err)
	}
	r := e.call(newInstanceBody(order, order+"-000001")).want(t, koogallery.ResultSuccess)
	if r.resp.InstanceID != id {
		t.Fatalf("instanceId %s, want %s", r.resp.InstanceID, id)
	}
	if n := e.runs(id); n != 1 {
		t.Fatalf("%d runs, want 1", n)
	}
}

// TestInboxCoversAProcessThatDiedAfterAccepting: an API process recorded a newInstance in the inbox, answered
// 000004, and died before dispatching the start. queryInstance must still say "in progress" (not "unknown"), a
// follow-up call must reach the instance (its start is dispatched on the spot), and a row nobody touches is
// started by the re-driver.
func TestInboxCoversAProcessThatDiedAfterAccepting(t *testing.T) {
	e := newEnv(t, true, 0)
	ctx := context.Background()
	orphan := func() (string, string) {
		order := testenv.Unique("CS")
		id := instance.ID(order, order+"-000001")
		if _, err := e.pool.Exec(ctx, `INSERT INTO koogallery_inbox (instance_id, order_id, order_line_id, business_id, test_flag, received_at, next_attempt_at)
			VALUES ($1, $2, $3, 'b-1', false, now(), now() + interval '1 hour')`, id, order, order+"-000001"); err != nil {
			t.Fatal(err)
		}
		return order, id
	}

	_, id := orphan()
	r := e.call(`{"activity":"queryInstance","instanceId":"`+id+`"}`).want(t, koogallery.ResultInProgress)
	if len(r.resp.Info) != 1 || r.resp.Info[0].InstanceID != id {
		t.Fatalf("queryInstance info %+v", r.resp.Info)
	}
	e.call(`{"activity":"refreshInstance","scene":"RENEWAL","orderId":"R1","orderLineId":"R1-000001","instanceId":"`+id+`","expireTime":"20271231155959"}`).
		want(t, koogallery.ResultSuccess)
	if st := e.state(id); st.Refreshes != 1 {
		t.Fatalf("the renewal after a pending start: %+v", st)
	}
	if n := e.runs(id); n != 1 {
		t.Fatalf("%d runs, want 1", n)
	}

	// A row left alone past its grace is started by the re-driver (the env's router runs one each second).
	_, id2 := orphan()
	if _, err := e.pool.Exec(ctx, `UPDATE koogallery_inbox SET next_attempt_at = now() - interval '1 second' WHERE instance_id = $1`, id2); err != nil {
		t.Fatal(err)
	}
	e.waitStarted(id2)
	var attempts int
	var dispatched bool
	for end := time.Now().Add(5 * time.Second); ; {
		if err := e.pool.QueryRow(ctx, `SELECT attempts, dispatched_at IS NOT NULL FROM koogallery_inbox WHERE instance_id = $1`, id2).
			Scan(&attempts, &dispatched); err != nil {
			t.Fatal(err)
		}
		if dispatched || time.Now().After(end) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if attempts != 1 || !dispatched {
		t.Fatalf("re-driven row: attempts %d dispatched %v", attempts, dispatched)
	}

	// The console shows the inbox; nothing is pending any more.
	var list struct {
		Items []store.InboxRow `json:"items"`
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if s := e.console("/koogallery/inbox?pending=true", &list); s != http.StatusOK {
			t.Fatalf("inbox console: HTTP %d", s)
		}
		if len(list.Items) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(list.Items) != 0 {
		t.Fatalf("pending inbox rows left: %+v", list.Items)
	}
	if s := e.console("/koogallery/inbox?limit=0", nil); s != http.StatusBadRequest {
		t.Fatalf("limit=0: HTTP %d", s)
	}
}
