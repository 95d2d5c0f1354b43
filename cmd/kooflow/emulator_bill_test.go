package main

import (
	"strings"
	"testing"
)

// TestBillFaultFlags reads the fault flags of kooflow emulator bill into the marketplace's bill faults, and
// refuses what does not name a line.
func TestBillFaultFlags(t *testing.T) {
	f, err := billFaults([]string{"O1/O1-1"}, []string{"P1/usage:i1:2026-11=0.01", "O2/O2-1=-3"}, []string{"GHOST/GHOST-1=9.50"})
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Drop) != 1 || f.Change["P1/usage:i1:2026-11"].String() != "0.01" || f.Change["O2/O2-1"].String() != "-3" ||
		len(f.Add) != 1 || f.Add[0].Settlement.StringFixed(2) != "9.50" || f.Add[0].Revenue.StringFixed(2) != "10.00" ||
		f.Add[0].PlatformFee.StringFixed(2) != "0.50" {
		t.Fatalf("faults: %+v", f)
	}
	for _, bad := range []struct{ drop, change, add []string }{
		{drop: []string{"O1"}},
		{change: []string{"O1/1"}},
		{change: []string{"O1/1=x"}},
		{add: []string{"G=1"}},
		{add: []string{"G/1=ten"}},
	} {
		if _, err := billFaults(bad.drop, bad.change, bad.add); err == nil || !strings.Contains(err.Error(), "want") {
			t.Errorf("%+v accepted (%v)", bad, err)
		}
	}
}
