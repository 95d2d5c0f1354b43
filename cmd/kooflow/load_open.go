package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/kooflow/kooflow/internal/loadgen"
)

// runOpenLoad is `kooflow load --rate`: calls start on a schedule, so a slow answer cannot hide by holding back
// the next call.
func runOpenLoad(ctx context.Context, out io.Writer, lo loadgen.Options, o loadOptions) error {
	fmt.Fprintf(out, "target %s, open loop at %.0f calls/s", o.url, o.rate)
	if o.duration > 0 {
		fmt.Fprintf(out, " for %s", o.duration)
	} else {
		fmt.Fprintf(out, ", %d calls", o.requests)
	}
	fmt.Fprintf(out, " (+%d warm-up)\n", o.warmup)
	rep, err := loadgen.RunOpen(ctx, loadgen.OpenOptions{Options: lo, Rate: o.rate})
	if err != nil {
		return err
	}
	rep.Write(out)
	if rep.Answered() == 0 {
		return errors.New("no call was answered")
	}
	if o.maxP99 > 0 && rep.Quantile(0.99) > o.maxP99 {
		return fmt.Errorf("p99 latency %s exceeds --max-p99 %s", rep.Quantile(0.99), o.maxP99)
	}
	return nil
}
