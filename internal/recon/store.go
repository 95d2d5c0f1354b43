package recon

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/shopspring/decimal"

	"github.com/kooflow/kooflow/internal/catalog"
	"github.com/kooflow/kooflow/internal/refusal"
	"github.com/kooflow/kooflow/internal/settlement"
)

// Store reads and writes the reconciliation tables; it reads kooflow's bills and never writes them.
type Store struct {
	Pool *pgxpool.Pool
	// Alerts receives unexplained differences and late or short payments; nil logs nothing.
	Alerts Alerter
	// Calendar decides working days for expected dates; nil is weekends only.
	Calendar *settlement.Calendar
	// BillDay is the marketplace's bill day of the month per product type (3 joint-operation, 7 general when
	// unset).
	BillDay map[catalog.ProductType]int
}

// ImportRequest is one bill-detail file to import.
type ImportRequest struct {
	Data        []byte
	Filename    string
	Period      settlement.Period
	ProductType catalog.ProductType
	Mapping     Mapping
	Actor       string
}

// Import is a recorded import.
type Import struct {
	ImportID        int64               `json:"importId"`
	SHA256          string              `json:"sha256"`
	Filename        string              `json:"filename"`
	Format          string              `json:"format"`
	Period          string              `json:"period"`
	ProductType     catalog.ProductType `json:"productType"`
	Rows            int64               `json:"rows"`
	RevenueTotal    *decimal.Decimal    `json:"revenueTotal,omitempty"`
	FeeTotal        *decimal.Decimal    `json:"platformFeeTotal,omitempty"`
	SettlementTotal decimal.Decimal     `json:"settlementTotal"`
	BillStatus      string              `json:"billStatus,omitempty"`
	ImportedBy      string              `json:"importedBy"`
	ImportedAt      time.Time           `json:"importedAt"`
	// AlreadyImported is set when the same file was imported before; nothing was written.
	AlreadyImported bool `json:"alreadyImported"`
	// Columns are the headers each field was read from (this import only).
	Columns map[string]string `json:"columns,omitempty"`
}

// FileHash is the identity of an imported file.
func FileHash(data []byte) string {
	h := sha256.Sum256(data)
	return hex.EncodeToString(h[:])
}

// Import reads a bill-detail export and keeps its rows. The same file (by SHA-256) is imported once: a second
// import returns the first one with AlreadyImported set. The rows are written with COPY in the same transaction
// as the import's header, so an import is there whole or not at all. When the export carries the bill's status,
// the bill's state follows it (if the move is one the process allows).
func (s *Store) Import(ctx context.Context, req ImportRequest) (Import, error) {
	if req.ProductType != catalog.General && req.ProductType != catalog.JointOperation {
		return Import{}, refusal.New(CodeInvalid, "product type %q must be %q or %q", req.ProductType, catalog.General, catalog.JointOperation)
	}
	if len(req.Data) == 0 {
		return Import{}, refusal.New(CodeInvalid, "the file is empty")
	}
	sum := FileHash(req.Data)
	if im, err := s.importByHash(ctx, sum); err == nil {
		im.AlreadyImported = true
		return im, nil
	} else if !errors.Is(err, pgx.ErrNoRows) {
		return Import{}, err
	}
	d, err := Parse(req.Data, req.Mapping, req.Period, req.ProductType)
	if err != nil {
		return Import{}, err
	}
	if len(d.Rows) == 0 {
		return Import{}, refusal.New(CodeInvalid, "the bill detail has a header but no lines")
	}
	im := Import{SHA256: sum, Filename: req.Filename, Format: d.Format, Period: req.Period.String(), ProductType: req.ProductType,
		Rows: int64(len(d.Rows)), BillStatus: d.BillStatus, ImportedBy: req.Actor, Columns: d.Columns}
	var rev, fee decimal.Decimal
	hasRev, hasFee := false, false
	for _, r := range d.Rows {
		im.SettlementTotal = im.SettlementTotal.Add(r.Settlement)
		if r.Revenue != nil {
			rev, hasRev = rev.Add(*r.Revenue), true
		}
		if r.PlatformFee != nil {
			fee, hasFee = fee.Add(*r.PlatformFee), true
		}
	}
	if hasRev {
		im.RevenueTotal = &rev
	}
	if hasFee {
		im.FeeTotal = &fee
	}
	mappingJSON, err := json.Marshal(req.Mapping)
	if err != nil {
		return im, fmt.Errorf("encode mapping: %w", err)
	}

	tx, err := s.Pool.Begin(ctx)
	if err != nil {
		return im, fmt.Errorf("begin import: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // after Commit this is a no-op
	err = tx.QueryRow(ctx, `INSERT INTO recon_imports (sha256, filename, format, period, product_type, row_count, revenue_total,
			fee_total, settlement_total, bill_status, mapping, imported_by)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
		ON CONFLICT (sha256) DO NOTHING RETURNING import_id, imported_at`,
		sum, req.Filename, d.Format, im.Period, string(req.ProductType), im.Rows, decPtr(im.RevenueTotal), decPtr(im.FeeTotal),
		im.SettlementTotal.StringFixed(2), d.BillStatus, mappingJSON, req.Actor).Scan(&im.ImportID, &im.ImportedAt)
	if errors.Is(err, pgx.ErrNoRows) { // imported concurrently by another request
		_ = tx.Rollback(ctx)
		prev, err := s.importByHash(ctx, sum)
		prev.AlreadyImported = true
		return prev, err
	}
	if err != nil {
		return im, fmt.Errorf("record import: %w", err)
	}
	im.ImportedAt = im.ImportedAt.UTC()
	if err := copyRows(ctx, tx, im.ImportID, d.Rows); err != nil {
		return im, err
	}
	if d.BillStatus != "" {
		st := BillState(req.Mapping.BillStatusValues[d.BillStatus])
		if err := s.followImportedState(ctx, tx, req.Period.String(), req.ProductType, st, im.ImportID, req.Actor); err != nil {
			return im, err
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return im, fmt.Errorf("commit import: %w", err)
	}
	return im, nil
}

func decPtr(d *decimal.Decimal) *string {
	if d == nil {
		return nil
	}
	s := d.StringFixed(2)
	return &s
}

const importColumns = `import_id, sha256, filename, format, period, product_type, row_count, revenue_total::text, fee_total::text,
	settlement_total::text, bill_status, imported_by, imported_at`

func scanImport(row pgx.Row) (Import, error) {
	var im Import
	var pt, set string
	var rev, fee *string
	if err := row.Scan(&im.ImportID, &im.SHA256, &im.Filename, &im.Format, &im.Period, &pt, &im.Rows, &rev, &fee, &set,
		&im.BillStatus, &im.ImportedBy, &im.ImportedAt); err != nil {
		return im, err
	}
	im.ProductType, im.ImportedAt = catalog.ProductType(pt), im.ImportedAt.UTC()
	var err error
	if im.SettlementTotal, err = decimal.NewFromString(set); err != nil {
		return im, fmt.Errorf("import %d: %w", im.ImportID, err)
	}
	for _, p := range []struct {
		src *string
		dst **decimal.Decimal
	}{{rev, &im.RevenueTotal}, {fee, &im.FeeTotal}} {
		if p.src != nil {
			d, err := decimal.NewFromString(*p.src)
			if err != nil {
				return im, fmt.Errorf("import %d: %w", im.ImportID, err)
			}
			*p.dst = &d
		}
	}
	return im, nil
}

func (s *Store) importByHash(ctx context.Context, sum string) (Import, error) {
	im, err := scanImport(s.Pool.QueryRow(ctx, `SELECT `+importColumns+` FROM recon_imports WHERE sha256 = $1`, sum))
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return im, fmt.Errorf("look up import: %w", err)
	}
	return im, err
}

// GetImport reads one import.
func (s *Store) GetImport(ctx context.Context, id int64) (Import, error) {
	im, err := scanImport(s.Pool.QueryRow(ctx, `SELECT `+importColumns+` FROM recon_imports WHERE import_id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return im, refusal.New(CodeNotFound, "no import %d", id)
	}
	if err != nil {
		return im, fmt.Errorf("read import %d: %w", id, err)
	}
	return im, nil
}

// ListImports lists the imports of a period and product type (either may be empty), newest first.
func (s *Store) ListImports(ctx context.Context, period string, t catalog.ProductType) ([]Import, error) {
	rows, err := s.Pool.Query(ctx, `SELECT `+importColumns+` FROM recon_imports
		WHERE ($1 = '' OR period = $1) AND ($2 = '' OR product_type = $2) ORDER BY import_id DESC LIMIT 200`, period, string(t))
	if err != nil {
		return nil, fmt.Errorf("list imports: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Import, error) { return scanImport(r) })
}

// copyRows writes an import's rows with one COPY in text format: the amounts go over the wire as the decimal text
// PostgreSQL parses anyway, which is several times cheaper than encoding a million numerics in binary.
func copyRows(ctx context.Context, tx pgx.Tx, importID int64, rows []Row) error {
	pr, pw := io.Pipe()
	go func() {
		bw := bufio.NewWriterSize(pw, 1<<20)
		id := strconv.FormatInt(importID, 10)
		var err error
		for _, r := range rows {
			bw.WriteString(id)
			bw.WriteByte('\t')
			bw.WriteString(strconv.FormatInt(r.RowNo, 10))
			for _, v := range []string{r.OrderID, r.OrderLineID, r.OrderType} {
				bw.WriteByte('\t')
				writeCopyText(bw, v)
			}
			for _, a := range []*decimal.Decimal{r.Revenue, r.PlatformFee} {
				bw.WriteByte('\t')
				if a == nil {
					bw.WriteString(`\N`)
				} else {
					bw.WriteString(a.StringFixed(2))
				}
			}
			bw.WriteByte('\t')
			bw.WriteString(r.Settlement.StringFixed(2))
			if err = bw.WriteByte('\n'); err != nil {
				break
			}
		}
		if err == nil {
			err = bw.Flush()
		}
		pw.CloseWithError(err)
	}()
	_, err := tx.Conn().PgConn().CopyFrom(ctx, pr, `COPY recon_lines (import_id, row_no, order_id, order_line_id, order_type,
		revenue, platform_fee, settlement) FROM STDIN`)
	_ = pr.CloseWithError(io.ErrClosedPipe) // stops the writer if COPY ended early
	if err != nil {
		return fmt.Errorf("copy bill-detail rows: %w", err)
	}
	return nil
}

// writeCopyText escapes a value for COPY's text format: backslash, tab, newline and carriage return.
func writeCopyText(w *bufio.Writer, v string) {
	if !strings.ContainsAny(v, "\\\t\n\r") {
		w.WriteString(v)
		return
	}
	for i := 0; i < len(v); i++ {
		switch c := v[i]; c {
		case '\\':
			w.WriteString(`\\`)
		case '\t':
			w.WriteString(`\t`)
		case '\n':
			w.WriteString(`\n`)
		case '\r':
			w.WriteString(`\r`)
		default:
			w.WriteByte(c)
		}
	}
}

// ImportAndDiff imports a bill detail and diffs it with kooflow's bill, as every front end does (the console API,
// the web console). A file imported before is not imported again: its latest diff of the bill is returned, or a
// new diff when there is none. created says whether the file was new.
func (s *Store) ImportAndDiff(ctx context.Context, req ImportRequest, cat *catalog.Catalog) (im Import, sum Summary, created bool, err error) {
	if im, err = s.Import(ctx, req); err != nil {
		return im, sum, false, err
	}
	if im.AlreadyImported {
		sum, err = s.Latest(ctx, im.Period, im.ProductType)
		if _, refused := refusal.As(err); err == nil || !refused {
			if err != nil {
				err = fmt.Errorf("read diff: %w", err)
			}
			return im, sum, false, err
		}
	}
	if sum, err = s.Diff(ctx, im.ImportID, req.Actor, cat); err != nil {
		return im, sum, !im.AlreadyImported, fmt.Errorf("diff bill detail: %w", err)
	}
	return im, sum, !im.AlreadyImported, nil
}
