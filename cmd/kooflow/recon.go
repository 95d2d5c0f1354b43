package main

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/shopspring/decimal"
	"github.com/spf13/cobra"

	"github.com/kooflow/kooflow/internal/app"
	"github.com/kooflow/kooflow/internal/ledger"
	"github.com/kooflow/kooflow/internal/recon"
	"github.com/kooflow/kooflow/internal/reconbench"
	"github.com/kooflow/kooflow/internal/settlement"
)

// newReconCmd groups reconciliation with the marketplace's bill (docs/settlement.md, "Reconciliation with the
// marketplace's bill").
func newReconCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "recon",
		Short: "Reconcile with the marketplace's bill: import its bill detail, diff, follow the bill until paid",
	}
	cmd.AddCommand(newReconImportCmd(), newReconDiffCmd(), newReconStateCmd(), newReconInvoiceCmd(), newReconReceiptCmd(),
		newReconReceivablesCmd(), newReconCheckCmd(), newReconBenchCmd())
	return cmd
}

func reconStore(d app.Deps) (*recon.Store, error) { return recon.NewStore(d) }

func reconBill(period, productType string) (recon.BillRef, error) {
	p, err := settlement.ParsePeriod(period)
	if err != nil {
		return recon.BillRef{}, err
	}
	ts, err := ledger.ParseProductTypes([]string{productType})
	if err != nil {
		return recon.BillRef{}, err
	}
	return recon.BillRef{Period: p, ProductType: ts[0]}, nil
}

func actor() string {
	if u := os.Getenv("USER"); u != "" {
		return "cli:" + u
	}
	return "cli"
}

func newReconImportCmd() *cobra.Command {
	var period, productType, mappingFile string
	cmd := &cobra.Command{
		Use:   "import FILE",
		Short: "Import a bill-detail export (CSV or XLSX) for a period and product type, and diff it with kooflow's bill",
		Long: `import reads the seller center's bill-detail export (详单导出) through the column mapping (the embedded
default, or --mapping FILE), keeps its rows, and diffs them with kooflow's bill of the same period and product type.
The same file imported again is recognised by its SHA-256 and not imported twice. kooflow's bills are not changed.`,
		Args: cobra.ExactArgs(1),
		RunE: withDeps(nil, func(cmd *cobra.Command, d app.Deps) error {
			ref, err := reconBill(period, productType)
			if err != nil {
				return err
			}
			m, err := recon.LoadMapping(mappingFile)
			if err != nil {
				return err
			}
			data, err := os.ReadFile(cmd.Flags().Arg(0))
			if err != nil {
				return fmt.Errorf("read bill detail: %w", err)
			}
			rs, err := reconStore(d)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			im, err := rs.Import(ctx, recon.ImportRequest{Data: data, Filename: filepath.Base(cmd.Flags().Arg(0)), Period: ref.Period,
				ProductType: ref.ProductType, Mapping: m, Actor: actor()})
			if err != nil {
				return err
			}
			sum, err := rs.Diff(ctx, im.ImportID, actor(), d.Catalog)
			if err != nil {
				return err
			}
			return printJSON(cmd, map[string]any{"import": im, "diff": sum})
		}),
	}
	cmd.Flags().StringVar(&period, "period", "", "the bill's period, YYYY-MM")
	cmd.Flags().StringVar(&productType, "type", "", "the bill's product type: general or joint-operation")
	cmd.Flags().StringVar(&mappingFile, "mapping", "", "column mapping JSON file (default: the embedded mapping)")
	_ = cmd.MarkFlagRequired("period")
	_ = cmd.MarkFlagRequired("type")
	return cmd
}

func newReconDiffCmd() *cobra.Command {
	var importID int64
	var all bool
	cmd := &cobra.Command{
		Use:   "diff",
		Short: "Diff an import again with kooflow's bill as it stands now, and print the differences",
		RunE: withDeps(nil, func(cmd *cobra.Command, d app.Deps) error {
			rs, err := reconStore(d)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			sum, err := rs.Diff(ctx, importID, actor(), d.Catalog)
			if err != nil {
				return err
			}
			f := recon.DiffFilter{Limit: 1000}
			if !all {
				no := false
				f.Explained = &no
			}
			lines, err := rs.DiffLines(ctx, sum.DiffID, f)
			if err != nil {
				return err
			}
			return printJSON(cmd, map[string]any{"diff": sum, "lines": lines})
		}),
	}
	cmd.Flags().Int64Var(&importID, "import", 0, "the import to diff")
	cmd.Flags().BoolVar(&all, "all", false, "print explained differences too (default: unexplained only)")
	_ = cmd.MarkFlagRequired("import")
	return cmd
}

func newReconStateCmd() *cobra.Command {
	var period, productType, note string
	cmd := &cobra.Command{
		Use:   "state STATE",
		Short: "Record the marketplace bill's state (e.g. COUNTERSIGNING or 会签中)",
		Args:  cobra.ExactArgs(1),
		RunE: withDeps(nil, func(cmd *cobra.Command, d app.Deps) error {
			ref, err := reconBill(period, productType)
			if err != nil {
				return err
			}
			st, err := recon.ParseState(cmd.Flags().Arg(0))
			if err != nil {
				return err
			}
			rs, err := reconStore(d)
			if err != nil {
				return err
			}
			if err := rs.SetState(cmd.Context(), ref, st, actor(), note); err != nil {
				return err
			}
			hist, err := rs.History(cmd.Context(), ref)
			if err != nil {
				return err
			}
			return printJSON(cmd, hist)
		}),
	}
	cmd.Flags().StringVar(&period, "period", "", "the bill's period, YYYY-MM")
	cmd.Flags().StringVar(&productType, "type", "", "general or joint-operation")
	cmd.Flags().StringVar(&note, "note", "", "why, for the history")
	_ = cmd.MarkFlagRequired("period")
	_ = cmd.MarkFlagRequired("type")
	return cmd
}

// reconMoney reads what the invoice and receipt commands share: the bill they are about and an amount in yuan,
// checked before the store is opened, so a typo changes nothing.
func reconMoney(d app.Deps, period, productType, amount string) (*recon.Store, recon.BillRef, decimal.Decimal, error) {
	ref, err := reconBill(period, productType)
	if err != nil {
		return nil, ref, decimal.Decimal{}, err
	}
	a, err := decimal.NewFromString(amount)
	if err != nil {
		return nil, ref, a, fmt.Errorf("--amount %q is not an amount in yuan", amount)
	}
	rs, err := reconStore(d)
	return rs, ref, a, err
}

func newReconInvoiceCmd() *cobra.Command {
	var period, productType, number, issued, amount string
	cmd := &cobra.Command{
		Use:   "invoice",
		Short: "Record the invoice issued to Huawei for a bill; payment is expected 6 working days after it",
		RunE: withDeps(nil, func(cmd *cobra.Command, d app.Deps) error {
			rs, ref, a, err := reconMoney(d, period, productType, amount)
			if err != nil {
				return err
			}
			return rs.RecordInvoice(cmd.Context(), ref, recon.Invoice{Number: number, IssuedOn: issued, Amount: a}, actor())
		}),
	}
	cmd.Flags().StringVar(&period, "period", "", "the bill's period, YYYY-MM")
	cmd.Flags().StringVar(&productType, "type", "", "general or joint-operation")
	cmd.Flags().StringVar(&number, "number", "", "invoice number")
	cmd.Flags().StringVar(&issued, "date", "", "issue date, YYYY-MM-DD")
	cmd.Flags().StringVar(&amount, "amount", "", "invoice amount in yuan")
	for _, f := range []string{"period", "type", "number", "date", "amount"} {
		_ = cmd.MarkFlagRequired(f)
	}
	return cmd
}

func newReconReceiptCmd() *cobra.Command {
	var period, productType, reference, received, amount string
	cmd := &cobra.Command{
		Use:   "receipt",
		Short: "Record a payment received from the marketplace for a bill",
		RunE: withDeps(nil, func(cmd *cobra.Command, d app.Deps) error {
			rs, ref, a, err := reconMoney(d, period, productType, amount)
			if err != nil {
				return err
			}
			return rs.RecordReceipt(cmd.Context(), ref, recon.Receipt{ReceivedOn: received, Amount: a, Reference: reference}, actor())
		}),
	}
	cmd.Flags().StringVar(&period, "period", "", "the bill's period, YYYY-MM")
	cmd.Flags().StringVar(&productType, "type", "", "general or joint-operation")
	cmd.Flags().StringVar(&reference, "reference", "", "the payment's reference (bank transfer id)")
	cmd.Flags().StringVar(&received, "date", "", "date received, YYYY-MM-DD")
	cmd.Flags().StringVar(&amount, "amount", "", "amount received in yuan")
	for _, f := range []string{"period", "type", "reference", "date", "amount"} {
		_ = cmd.MarkFlagRequired(f)
	}
	return cmd
}

func newReconReceivablesCmd() *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "receivables",
		Short: "What the marketplace owes: every bill with money outstanding, since when, and whether it is overdue",
		RunE: withDeps(nil, func(cmd *cobra.Command, d app.Deps) error {
			rs, err := reconStore(d)
			if err != nil {
				return err
			}
			out, err := rs.Receivables(cmd.Context(), d.Clock()(), !all)
			if err != nil {
				return err
			}
			return printJSON(cmd, out)
		}),
	}
	cmd.Flags().BoolVar(&all, "all", false, "include bills paid in full")
	return cmd
}

func newReconCheckCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "check",
		Short: "Raise alerts for overdue and short payments, and resolve those settled (run it daily)",
		RunE: withDeps(nil, func(cmd *cobra.Command, d app.Deps) error {
			rs, err := reconStore(d)
			if err != nil {
				return err
			}
			out, err := rs.CheckPayments(cmd.Context(), d.Clock()())
			if err != nil {
				return err
			}
			return printJSON(cmd, out)
		}),
	}
}

func newReconBenchCmd() *cobra.Command {
	var o reconbench.Options
	var period string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Reconciliation benchmark: import and diff a bill detail of --lines lines (development; starts its own PostgreSQL)",
		Long: `bench starts a private PostgreSQL (unless DATABASE_URL is set: then the database must not hold bills for the
period), closes a period of --lines synthetic orders into one general bill, writes the marketplace's bill detail for
it as CSV with a few dropped, changed and added lines, then times importing the file and diffing it.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			if o.Log, o.Period, o.DatabaseURL, err = benchPrelude(period); err != nil {
				return err
			}
			rep, err := reconbench.Run(cmd.Context(), o)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd, rep)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "reconciliation benchmark: %d-line bill, period %s\n", rep.Lines, rep.Period)
			fmt.Fprintf(w, "  setup (orders + close)   %s\n", rep.Setup.Round(time.Millisecond))
			fmt.Fprintf(w, "  bill detail              %d rows, %.1f MB CSV\n", rep.FileRows, float64(rep.FileBytes)/1e6)
			fmt.Fprintf(w, "  import (parse + COPY)    %s\n", rep.Import.Round(time.Millisecond))
			fmt.Fprintf(w, "  diff                     %s\n", rep.Diff.Round(time.Millisecond))
			fmt.Fprintf(w, "  import + diff            %s\n", rep.Total.Round(time.Millisecond))
			s := rep.Summary
			fmt.Fprintf(w, "  matched %d (%s), explained %d, unexplained %d (%s); expected %d dropped + %d changed + %d added\n",
				s.MatchedCount, s.MatchedTotal.StringFixed(2), s.ExplainedCount, s.UnexplainedCount, s.UnexplainedTotal.StringFixed(2),
				rep.WantDrops, rep.WantChange, rep.WantAdds)
			return nil
		},
	}
	cmd.Flags().IntVar(&o.Lines, "lines", 1_000_000, "lines in the bill")
	cmd.Flags().StringVar(&period, "period", "2026-10", "the period")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	return cmd
}
