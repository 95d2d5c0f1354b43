package metrics_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/kooflow/kooflow/internal/metrics"
	"github.com/kooflow/kooflow/internal/testenv"
)

// dashboard is the part of Grafana's dashboard schema the provisioning loader requires.
type dashboard struct {
	UID           string `json:"uid"`
	Title         string `json:"title"`
	SchemaVersion int    `json:"schemaVersion"`
	Panels        []struct {
		ID         int    `json:"id"`
		Type       string `json:"type"`
		Title      string `json:"title"`
		Datasource struct {
			Type string `json:"type"`
			UID  string `json:"uid"`
		} `json:"datasource"`
		GridPos struct{ H, W, X, Y int } `json:"gridPos"`
		Targets []struct {
			RefID string `json:"refId"`
			Expr  string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
}

type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

var (
	metricName = regexp.MustCompile(`\b(?:kooflow|temporal|go|process)_[a-zA-Z0-9_]+`)
	alertKind  = regexp.MustCompile(`kooflow_alerts_open\{[^}]*kind="([^"]+)"`)
)

// exported reports whether a series name in PromQL belongs to a family the code exports (a histogram's
// _bucket, _sum and _count series included).
func exported(name string) bool {
	known := slices.Concat(metrics.Families(), metrics.SDKFamilies(), metrics.SDKFailureFamilies())
	if slices.Contains(known, name) {
		return true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok && slices.Contains(known, base) &&
			(strings.HasSuffix(base, "_seconds") || strings.HasSuffix(base, "_latency")) {
			return true
		}
	}
	return false
}

// checkExpr fails the test unless expr names at least one metric, every metric it names is exported, every alert
// kind it names is raised, and its brackets balance.
func checkExpr(t *testing.T, where, expr string) {
	t.Helper()
	names := metricName.FindAllString(expr, -1)
	if len(names) == 0 {
		t.Errorf("%s: %q names no kooflow or temporal metric", where, expr)
	}
	for _, n := range names {
		if !exported(n) {
			t.Errorf("%s: %q names %s, which kooflow does not export", where, expr, n)
		}
	}
	for _, m := range alertKind.FindAllStringSubmatch(expr, -1) {
		if !slices.Contains(metrics.AlertKinds(), m[1]) {
			t.Errorf("%s: alert kind %q is never raised", where, m[1])
		}
	}
	for _, pair := range []string{"()", "{}", "[]"} {
		if strings.Count(expr, pair[:1]) != strings.Count(expr, pair[1:]) {
			t.Errorf("%s: unbalanced %s in %q", where, pair, expr)
		}
	}
}

// TestDashboardLoadsAndNamesExportedMetrics checks deploy/grafana's dashboard against the schema fields Grafana
// needs and every PromQL expression in it against the families the code exports.
func TestDashboardLoadsAndNamesExportedMetrics(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "deploy", "grafana", "kooflow-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("dashboard JSON: %v", err)
	}
	if d.UID == "" || d.Title == "" || d.SchemaVersion < 30 || len(d.Panels) == 0 {
		t.Fatalf("dashboard header: uid %q title %q schemaVersion %d panels %d", d.UID, d.Title, d.SchemaVersion, len(d.Panels))
	}
	ids := map[int]bool{}
	for _, p := range d.Panels {
		where := "panel " + p.Title
		switch {
		case ids[p.ID] || p.ID == 0:
			t.Errorf("%s: id %d missing or repeated", where, p.ID)
		case p.Type != "timeseries" && p.Type != "stat":
			t.Errorf("%s: type %q", where, p.Type)
		case p.Title == "" || p.Datasource.Type != "prometheus" || p.Datasource.UID == "":
			t.Errorf("%s: title or datasource missing", where)
		case p.GridPos.W <= 0 || p.GridPos.H <= 0 || p.GridPos.X < 0 || p.GridPos.X+p.GridPos.W > 24:
			t.Errorf("%s: gridPos %+v", where, p.GridPos)
		case len(p.Targets) == 0:
			t.Errorf("%s: no targets", where)
		}
		ids[p.ID] = true
		for _, tg := range p.Targets {
			if tg.RefID == "" {
				t.Errorf("%s: a target without refId", where)
			}
			checkExpr(t, where, tg.Expr)
		}
	}
	// The dashboard covers every kooflow family.
	for _, f := range metrics.Families() {
		if !strings.Contains(string(raw), f) {
			t.Errorf("the dashboard does not show %s", f)
		}
	}
}

// TestAlertingRulesNameExportedMetrics checks deploy/prometheus's rule file: valid YAML in Prometheus' rule
// layout, unique alert names, and every expression naming exported families.
func TestAlertingRulesNameExportedMetrics(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "deploy", "prometheus", "kooflow-rules.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var rf ruleFile
	if err := yaml.Unmarshal(raw, &rf); err != nil {
		t.Fatalf("rules YAML: %v", err)
	}
	seen := map[string]bool{}
	var kinds []string
	for _, g := range rf.Groups {
		if g.Name == "" || len(g.Rules) == 0 {
			t.Errorf("group %q is empty or unnamed", g.Name)
		}
		for _, r := range g.Rules {
			if r.Alert == "" || seen[r.Alert] || r.Annotations["summary"] == "" || r.Labels["severity"] == "" {
				t.Errorf("rule %q: name missing or repeated, or no summary or severity", r.Alert)
			}
			seen[r.Alert] = true
			checkExpr(t, "rule "+r.Alert, r.Expr)
			for _, m := range alertKind.FindAllStringSubmatch(r.Expr, -1) {
				kinds = append(kinds, m[1])
			}
		}
	}
	// Every alert kind the pusher sends also has a rule on its gauge, except the informational unknown-product.
	for _, k := range metrics.AlertKinds() {
		if k != "unknown-product" && k != "parked" && !slices.Contains(kinds, k) {
			t.Errorf("no rule on kooflow_alerts_open{kind=%q}", k)
		}
	}
}

// TestComposeRunsPrometheusAndGrafanaWithThem: the compose file mounts the rules, the scrape configuration and
// the dashboard where Prometheus and Grafana read them, and the scrape jobs are the ones the rules name.
func TestComposeRunsPrometheusAndGrafanaWithThem(t *testing.T) {
	root := testenv.RepoRoot()
	var compose struct {
		Services map[string]struct {
			Image   string   `yaml:"image"`
			Volumes []string `yaml:"volumes"`
		} `yaml:"services"`
	}
	raw, err := os.ReadFile(filepath.Join(root, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(raw, &compose); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	mounts := func(svc string) []string {
		var out []string
		for _, v := range compose.Services[svc].Volumes {
			out = append(out, strings.SplitN(v, ":", 2)[0])
		}
		return out
	}
	if !slices.Contains(mounts("prometheus"), "./deploy/prometheus") {
		t.Errorf("prometheus mounts %v", mounts("prometheus"))
	}
	for _, m := range []string{"./deploy/grafana/provisioning", "./deploy/grafana/kooflow-dashboard.json"} {
		if !slices.Contains(mounts("grafana"), m) {
			t.Errorf("grafana does not mount %s", m)
		}
	}
	for _, m := range slices.Concat(mounts("prometheus"), mounts("grafana")) {
		if strings.HasPrefix(m, "./") {
			if _, err := os.Stat(filepath.Join(root, m)); err != nil {
				t.Errorf("mounted %s: %v", m, err)
			}
		}
	}
	var prom struct {
		RuleFiles     []string `yaml:"rule_files"`
		ScrapeConfigs []struct {
			JobName string `yaml:"job_name"`
		} `yaml:"scrape_configs"`
	}
	raw, err = os.ReadFile(filepath.Join(root, "deploy", "prometheus", "prometheus.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(raw, &prom); err != nil {
		t.Fatalf("prometheus.yml: %v", err)
	}
	if !slices.Contains(prom.RuleFiles, "kooflow-rules.yml") {
		t.Errorf("rule_files %v", prom.RuleFiles)
	}
	var jobs []string
	for _, s := range prom.ScrapeConfigs {
		jobs = append(jobs, s.JobName)
	}
	rules, err := os.ReadFile(filepath.Join(root, "deploy", "prometheus", "kooflow-rules.yml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile(`job="([^"]+)"`).FindAllStringSubmatch(string(rules), -1) {
		if !slices.Contains(jobs, m[1]) {
			t.Errorf("the rules name job %q, which prometheus.yml does not scrape (%v)", m[1], jobs)
		}
	}
}
