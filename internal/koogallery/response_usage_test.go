package koogallery

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestUsageInfoEncoding(t *testing.T) {
	at := time.Date(2026, 11, 29, 17, 5, 9, 123456789, time.FixedZone("CST", 8*3600))
	if got := FormatStatisticalTime(at); got != "20261129090509123" {
		t.Fatalf("statisticalTime %s", got)
	}
	b := Encode(Response{ResultCode: ResultSuccess, Info: []InstanceInfo{{InstanceID: "i", UsageInfo: []UsageInfo{
		{RelatedInstanceID: "r", UsageValue: json.Number("12345678.1234"), StatisticalTime: "20261129090509123"}}}}})
	if !strings.Contains(string(b), `"usageInfo":[{"relatedInstanceId":"r","usageValue":12345678.1234,"statisticalTime":"20261129090509123"}]`) {
		t.Fatalf("%s", b)
	}
}
