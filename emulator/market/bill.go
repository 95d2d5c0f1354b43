package market

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/shopspring/decimal"

	"github.com/kooflow/kooflow/emulator/ledger"
	"github.com/kooflow/kooflow/internal/catalog"
)

// BillQuery asks the marketplace for its bill detail of one period and product type, as the seller center's
// 详单导出 gives it.
type BillQuery struct {
	Period      string `json:"period"`      // 2026-10
	ProductType string `json:"productType"` // general (default) or joint-operation
	Format      string `json:"format"`      // csv (default) or xlsx
	// Threshold is the minimum total a bill is produced for; 1000 yuan if nil (the published rule).
	Threshold *decimal.Decimal `json:"threshold,omitempty"`
	// Faults make the bill differ from what the marketplace recorded: a reconciliation has something to find.
	Faults ledger.BillFaults `json:"faults"`
}

// DefaultThreshold is the published minimum of a bill, 1000 yuan per product type and period.
var DefaultThreshold = decimal.NewFromInt(1000)

// BillFormats are the formats the bill detail is exported in.
var BillFormats = []string{"csv", "xlsx"}

// beijing is the marketplace's business time zone: a period is a Beijing month.
var beijing = time.FixedZone("Asia/Shanghai", 8*60*60)

// periodEnd reads 2026-10 (or 202610) and returns the first instant after that Beijing month.
func periodEnd(period string) (string, time.Time, error) {
	var y, m int
	var err error
	switch len(period) {
	case 7:
		_, err = fmt.Sscanf(period, "%4d-%2d", &y, &m)
	case 6:
		_, err = fmt.Sscanf(period, "%4d%2d", &y, &m)
	default:
		err = fmt.Errorf("wrong length")
	}
	if err != nil || y < 2000 || m < 1 || m > 12 {
		return "", time.Time{}, fmt.Errorf("period %q: want YYYY-MM, like 2026-10", period)
	}
	return fmt.Sprintf("%04d-%02d", y, m), time.Date(y, time.Month(m)+1, 1, 0, 0, 0, 0, beijing).UTC(), nil
}

// Ledger is the marketplace's ledger of orders and their money.
func (m *Market) Ledger() *ledger.Ledger { return m.opts.Ledger }

// Bill computes the marketplace's bill of a period and product type from its ledger and its charged usage, with
// the catalog's terms, and records what it billed (asking for the same period again gives the same bill).
func (m *Market) Bill(q BillQuery) (ledger.Bill, error) {
	period, end, err := periodEnd(q.Period)
	if err != nil {
		return ledger.Bill{}, err
	}
	if q.ProductType == "" {
		q.ProductType = ledger.TypeGeneral
	}
	if q.ProductType != ledger.TypeGeneral && q.ProductType != ledger.TypeJointOperation {
		return ledger.Bill{}, fmt.Errorf("product type %q: want %s or %s", q.ProductType, ledger.TypeGeneral, ledger.TypeJointOperation)
	}
	threshold := DefaultThreshold
	if q.Threshold != nil {
		threshold = *q.Threshold
	}
	cat := m.opts.Catalog
	return m.opts.Ledger.Bill(ledger.BillRequest{Period: period, End: end, ProductType: q.ProductType, Threshold: threshold,
		Faults: q.Faults, Usage: m.charges, Terms: func(id string) (ledger.Terms, bool) {
			p, ok := cat.Lookup(id)
			if !ok {
				return ledger.Terms{}, false
			}
			if p.Type == catalog.JointOperation {
				return ledger.Terms{Type: ledger.TypeJointOperation, Rate: p.RevenueShare}, true
			}
			return ledger.Terms{Type: ledger.TypeGeneral, Rate: p.PlatformFeeRate}, true
		}, UsagePrice: func(id string) (decimal.Decimal, bool) {
			p, ok := cat.Lookup(id)
			if !ok || p.ChargingMode != catalog.ChargingOnDemand || p.Usage == nil || !p.Usage.UnitPrice.IsPositive() {
				return decimal.Zero, false
			}
			return p.Usage.UnitPrice, true
		}})
}

// BillDetail writes the bill of q as the seller center's export in q.Format.
func (m *Market) BillDetail(q BillQuery) ([]byte, error) {
	if q.Format == "" {
		q.Format = "csv"
	}
	if q.Format != "csv" && q.Format != "xlsx" {
		return nil, fmt.Errorf("format %q: want csv or xlsx", q.Format)
	}
	b, err := m.Bill(q)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if q.Format == "xlsx" {
		err = b.WriteDetailXLSX(&buf)
	} else {
		err = b.WriteDetailCSV(&buf)
	}
	if err != nil {
		return nil, fmt.Errorf("write the bill detail: %w", err)
	}
	return buf.Bytes(), nil
}

// Bills is the marketplace's side of settlement as a scenario and the bill CLI use it, in-process or remote.
type Bills interface {
	// PutLedger records a scenario runner's ledger lines in the market's ledger.
	PutLedger(ctx context.Context, es []ledger.Entry) error
	// BillDetail exports the bill detail of a period and product type.
	BillDetail(ctx context.Context, q BillQuery) ([]byte, error)
}

func (l Local) PutLedger(_ context.Context, es []ledger.Entry) error {
	l.M.Ledger().Put(es)
	return nil
}
func (l Local) BillDetail(_ context.Context, q BillQuery) ([]byte, error) { return l.M.BillDetail(q) }

// ledgerBatch keeps each PUT of ledger lines well inside the control API's 1 MiB body.
const ledgerBatch = 500

// PutLedger sends the lines in batches; each batch is recorded on its own, and sending them again is harmless.
func (c Remote) PutLedger(ctx context.Context, es []ledger.Entry) error {
	for len(es) > 0 {
		n := min(len(es), ledgerBatch)
		if err := c.do(ctx, http.MethodPut, ControlPrefix+"ledger", es[:n], nil); err != nil {
			return err
		}
		es = es[n:]
	}
	return nil
}

// BillDetail asks the control API for the bill detail file.
func (c Remote) BillDetail(ctx context.Context, q BillQuery) ([]byte, error) {
	var raw rawBody
	if err := c.do(ctx, http.MethodPost, ControlPrefix+"bill", q, &raw); err != nil {
		return nil, err
	}
	return raw, nil
}

// rawBody receives a response body as it is (Remote.do decodes JSON into everything else).
type rawBody []byte

// billRoutes serves the bill: PUT ledger (a runner's ledger lines), POST bill (a BillQuery; the answer is the
// file itself, text/csv or the XLSX media type).
func (m *Market) billRoutes(mux *http.ServeMux, decode func(http.ResponseWriter, *http.Request, []byte, any) bool) {
	mux.HandleFunc("PUT "+ControlPrefix+"ledger", func(w http.ResponseWriter, r *http.Request) {
		var es []ledger.Entry
		if !decode(w, r, r.Context().Value(bodyKey{}).([]byte), &es) {
			return
		}
		for _, e := range es {
			if e.OrderID == "" || e.OrderLineID == "" {
				writeJSON(w, http.StatusBadRequest, controlError{"every ledger line needs orderId and orderLineId"})
				return
			}
		}
		m.Ledger().Put(es)
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST "+ControlPrefix+"bill", func(w http.ResponseWriter, r *http.Request) {
		var q BillQuery
		if !decode(w, r, r.Context().Value(bodyKey{}).([]byte), &q) {
			return
		}
		b, err := m.BillDetail(q)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, controlError{err.Error()})
			return
		}
		ct := "text/csv; charset=utf-8"
		if q.Format == "xlsx" {
			ct = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
		}
		w.Header().Set("Content-Type", ct)
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(b)
	})
}

var _ Bills = Local{}
var _ Bills = Remote{}
