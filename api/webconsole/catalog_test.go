package webconsole

import (
	"io/fs"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/kooflow/kooflow/internal/recon"
)

// Every key exists in both languages with a message of its own, and every key a template or handler uses is in
// the catalog, so no page shows a bracketed key.
func TestCatalogsHaveEveryKeyInBothLanguages(t *testing.T) {
	cats := Catalogs()
	zh, en := cats[LangZH], cats[LangEN]
	zk, ek := zh.Keys(), en.Keys()
	slices.Sort(zk)
	slices.Sort(ek)
	if !slices.Equal(zk, ek) {
		t.Fatalf("the catalogs' keys differ")
	}
	for _, k := range zk {
		if strings.TrimSpace(zh.T(k)) == "" || strings.TrimSpace(en.T(k)) == "" {
			t.Errorf("key %s has an empty message", k)
		}
	}
	for _, term := range []string{"服务监管", "生产接口消息", "账单", "对账", "出账", "会签", "申付", "支付", "应收"} {
		found := false
		for _, k := range zk {
			if strings.Contains(zh.T(k), term) {
				found = true
			}
		}
		if !found {
			t.Errorf("the zh-CN catalog does not use the marketplace's term %s", term)
		}
	}

	used := regexp.MustCompile(`\.T "([^"]+)"`)
	prefixed := regexp.MustCompile(`print "([a-z]+\.)"`)
	var sources []string
	_ = fs.WalkDir(templateFS, "templates", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			b, _ := fs.ReadFile(templateFS, p)
			sources = append(sources, string(b))
		}
		return nil
	})
	for _, f := range []string{"webconsole.go", "auth.go", "actions.go", "pages.go", "recon.go"} {
		b, err := readFile(f)
		if err != nil {
			t.Fatal(err)
		}
		sources = append(sources, b)
	}
	n := 0
	for _, src := range sources {
		for _, m := range used.FindAllStringSubmatch(src, -1) {
			n++
			if !zh.Has(m[1]) {
				t.Errorf("key %s is used but not in the catalog", m[1])
			}
		}
		for _, m := range prefixed.FindAllStringSubmatch(src, -1) {
			if !slices.ContainsFunc(zk, func(k string) bool { return strings.HasPrefix(k, m[1]) }) {
				t.Errorf("no key with the prefix %s", m[1])
			}
		}
	}
	if n < 100 {
		t.Fatalf("found only %d uses of catalog keys; the pattern no longer matches the templates", n)
	}
	// The states the read model holds all have a name.
	for _, s := range lifecycleStates {
		if !zh.Has("lc." + s) {
			t.Errorf("lifecycle %s has no name", s)
		}
	}
	for _, s := range recon.States {
		if !zh.Has("rs." + string(s)) {
			t.Errorf("bill state %s has no name", s)
		}
	}
	for _, k := range []string{recon.KindMarketplaceOnly, recon.KindKooflowOnly, recon.KindAmount} {
		if !zh.Has("rk." + k) {
			t.Errorf("difference kind %s has no name", k)
		}
	}
	for _, s := range supervisionStates {
		if !zh.Has("sv." + s) {
			t.Errorf("supervision %s has no name", s)
		}
	}
}

func TestMoneyIsExact(t *testing.T) {
	for in, want := range map[string]string{"30": "30.00", "30.5": "30.50", "30.500": "30.50", "0.125": "0.125", "-12.30": "-12.30", "abc": "abc"} {
		if got := money(in); got != want {
			t.Errorf("money(%q) = %q, want %q", in, got, want)
		}
	}
}

func readFile(name string) (string, error) {
	b, err := os.ReadFile(name)
	return string(b), err
}
