package webconsole

import (
	"fmt"
	"html/template"
	"io/fs"
	"strings"
	"time"

	"github.com/shopspring/decimal"
)

// funcs are the templates' helpers. Times show in Asia/Shanghai, with the UTC time on hover; amounts show
// exactly, with two decimals (more only when the stored value has more).
func (c *Console) funcs() template.FuncMap {
	return template.FuncMap{
		"dt": func(v any) template.HTML {
			var t time.Time
			switch x := v.(type) {
			case time.Time:
				t = x
			case *time.Time:
				if x == nil {
					return ""
				}
				t = *x
			default:
				return ""
			}
			if t.IsZero() {
				return ""
			}
			u := t.UTC().Format(time.RFC3339)
			return template.HTML(fmt.Sprintf(`<time datetime="%s" title="%s UTC">%s</time>`, u,
				t.UTC().Format("2006-01-02 15:04:05"), t.In(c.loc).Format("2006-01-02 15:04:05")))
		},
		"money": money,
		"deref": func(s *string) string {
			if s == nil {
				return ""
			}
			return *s
		},
		"temporalURL": func(s string) template.URL { return template.URL(s) },
		"join":        strings.Join,
		"key":         randomID,
		"dict2":       func(v view, id string) map[string]any { return map[string]any{"V": v, "ID": id} },
		"dict3": func(v view, id, refund string) map[string]any {
			return map[string]any{"V": v, "ID": id, "R": refund}
		},
		"hasPrefix": strings.HasPrefix,
	}
}

// money formats an amount in yuan exactly: two decimals, or as many as needed not to round.
func money(v any) string {
	var d decimal.Decimal
	switch x := v.(type) {
	case decimal.Decimal:
		d = x
	case *decimal.Decimal:
		if x == nil {
			return ""
		}
		d = *x
	case string:
		var err error
		if d, err = decimal.NewFromString(x); err != nil {
			return x
		}
	case *string:
		if x == nil {
			return ""
		}
		return money(*x)
	default:
		return fmt.Sprint(v)
	}
	if d.Equal(d.Truncate(2)) {
		return d.StringFixed(2)
	}
	return d.String()
}

// pageNames are the page templates; each is rendered inside layout.html's "base".
var pageNames = []string{"signin", "error", "instances", "instance", "supervision", "refunds", "parked", "messages",
	"message", "alerts", "bills", "bill", "explain", "settings", "recon", "recondiff", "reconbill", "receivables"}

func parsePages(funcs template.FuncMap) (map[string]*template.Template, error) {
	sub, err := fs.Sub(templateFS, "templates")
	if err != nil {
		return nil, err
	}
	base, err := template.New("layout.html").Funcs(funcs).ParseFS(sub, "layout.html", "forms.html")
	if err != nil {
		return nil, fmt.Errorf("web console templates: %w", err)
	}
	out := map[string]*template.Template{}
	for _, n := range pageNames {
		t, err := template.Must(base.Clone()).ParseFS(sub, n+".html")
		if err != nil {
			return nil, fmt.Errorf("web console template %s: %w", n, err)
		}
		out[n] = t
	}
	return out, nil
}
