package main

import (
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/shopspring/decimal"
	"github.com/spf13/cobra"

	"github.com/kooflow/kooflow/emulator/ledger"
	"github.com/kooflow/kooflow/emulator/market"
)

// newEmulatorBillCmd exports the emulated marketplace's bill detail (详单导出) through the market's control API:
// the same file the seller center gives a seller, which `kooflow recon import` reads.
func newEmulatorBillCmd() *cobra.Command {
	var t target
	var q market.BillQuery
	var out, threshold string
	var drop, change, add []string
	cmd := &cobra.Command{
		Use:   "bill",
		Short: "Export the marketplace's bill detail of a period (CSV or XLSX), as the seller center's 详单导出",
		Long: `bill asks the running emulator market (kooflow dev's, or kooflow emulator serve) for its bill of a period and
product type, computed by the marketplace's own rules from the orders the emulator's customers placed and the
pay-per-use usage it charged, and writes the bill detail kooflow imports:

  kooflow emulator bill --period 2026-10 --format xlsx -o 账单明细.xlsx
  kooflow recon import 账单明细.xlsx --period 2026-10 --type general

Faults make the marketplace's bill differ from its own records, so the reconciliation has something to find.
A line is named orderId/orderLineId, or orderId/usage:instanceId:YYYY-MM for a usage line:

  --drop O1/O1-000001           leave the line out
  --change O1/O1-000001=0.01    add 0.01 to the seller's settlement of the line
  --add GHOST/GHOST-1=9.50      bill a line the seller never had (settlement 9.50, 5 % fee)`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, log, err := emulatorSetup()
			if err != nil {
				return err
			}
			if err := t.resolve(cfg); err != nil {
				return err
			}
			if !slices.Contains(market.BillFormats, q.Format) {
				return fmt.Errorf("--format %q: want csv or xlsx", q.Format)
			}
			if threshold != "" {
				v, err := decimal.NewFromString(threshold)
				if err != nil || v.IsNegative() {
					return fmt.Errorf("--threshold %q: want an amount in yuan", threshold)
				}
				q.Threshold = &v
			}
			if q.Faults, err = billFaults(drop, change, add); err != nil {
				return err
			}
			places, stop, err := t.places(cfg, log)
			if err != nil {
				return err
			}
			defer stop()
			bills, ok := places.(market.Bills)
			if !ok {
				return fmt.Errorf("the market at %s does not export bills", t.marketURL)
			}
			file, err := bills.BillDetail(cmd.Context(), q)
			if err != nil {
				return err
			}
			if out == "" || out == "-" {
				_, err = os.Stdout.Write(file)
				return err
			}
			if err := os.WriteFile(out, file, 0o644); err != nil {
				return fmt.Errorf("write %s: %w", out, err)
			}
			fmt.Fprintf(os.Stderr, "wrote the %s %s bill detail to %s (%d bytes)\n", q.Period, q.ProductType, out, len(file))
			return nil
		},
	}
	t.flags(cmd)
	f := cmd.Flags()
	f.StringVar(&q.Period, "period", "", "the period, YYYY-MM (required)")
	f.StringVar(&q.ProductType, "type", ledger.TypeGeneral, "product type: general or joint-operation")
	f.StringVar(&q.Format, "format", "csv", "csv or xlsx")
	f.StringVarP(&out, "output", "o", "", "write the file here (default: standard output)")
	f.StringVar(&threshold, "threshold", "", "the minimum bill total, yuan (default the published 1000)")
	f.StringArrayVar(&drop, "drop", nil, "fault: leave this line out (orderId/orderLineId); repeatable")
	f.StringArrayVar(&change, "change", nil, "fault: LINE=AMOUNT adds AMOUNT to the line's settlement; repeatable")
	f.StringArrayVar(&add, "add", nil, "fault: ORDER/LINE=SETTLEMENT bills a line the seller never had; repeatable")
	_ = cmd.MarkFlagRequired("period")
	return cmd
}

// billFaults reads the bill fault flags.
func billFaults(drop, change, add []string) (ledger.BillFaults, error) {
	f := ledger.BillFaults{Drop: drop}
	for _, c := range change {
		k, v, ok := strings.Cut(c, "=")
		d, err := decimal.NewFromString(v)
		if !ok || err != nil || !strings.Contains(k, "/") {
			return f, fmt.Errorf("--change %q: want orderId/orderLineId=AMOUNT", c)
		}
		if f.Change == nil {
			f.Change = map[string]decimal.Decimal{}
		}
		f.Change[k] = d
	}
	for _, a := range add {
		k, v, ok := strings.Cut(a, "=")
		set, err := decimal.NewFromString(v)
		order, line, slash := strings.Cut(k, "/")
		if !ok || err != nil || !slash || order == "" || line == "" {
			return f, fmt.Errorf("--add %q: want orderId/orderLineId=SETTLEMENT", a)
		}
		// A general line at the usual 5 %: revenue is what makes the settlement 95 % of it.
		rev := set.Div(decimal.RequireFromString("0.95")).Round(2)
		f.Add = append(f.Add, ledger.BillLine{OrderID: order, OrderLineID: line, OrderType: "NEW", Revenue: rev,
			PlatformFee: rev.Sub(set), Settlement: set})
	}
	for _, d := range drop {
		if !strings.Contains(d, "/") {
			return f, fmt.Errorf("--drop %q: want orderId/orderLineId", d)
		}
	}
	return f, nil
}
