package usagepush

import (
	"testing"

	"github.com/kooflow/kooflow/internal/koogallery/usagedata"
)

// TestJudgeMapsEveryDocumentedCode checks the verdict for every per-record code the documents list, for a record
// not refused, and for a code they do not list.
func TestJudgeMapsEveryDocumentedCode(t *testing.T) {
	want := map[string]Outcome{
		"":    Accepted,
		"005": Duplicate,
		"001": Parked, "006": Parked, "009": Parked, "012": Parked, "013": Parked,
		"007": Refused,
		"002": Refused, "003": Refused, "004": Refused, "010": Refused, "011": Refused,
		"099": Parked,
	}
	var recs []usagedata.Record
	var refusals []usagedata.Refusal
	for code := range want {
		sn := "sn-" + code
		recs = append(recs, usagedata.Record{MeteringSN: sn, InstanceID: "i-" + code})
		if code != "" {
			refusals = append(refusals, usagedata.Refusal{MeteringSN: sn, Code: code, Message: "m"})
		}
	}
	got := Judge(recs, refusals)
	if len(got) != len(recs) {
		t.Fatalf("%d verdicts for %d records", len(got), len(recs))
	}
	for i, v := range got {
		code := recs[i].MeteringSN[len("sn-"):]
		if v.Outcome != want[code] || v.MeteringSN != recs[i].MeteringSN || v.InstanceID != recs[i].InstanceID || v.Code != code {
			t.Errorf("code %q: verdict %+v, want outcome %d", code, v, want[code])
		}
	}
}
