package recon

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/kooflow/kooflow/internal/catalog"
)

func BenchmarkParse100k(b *testing.B) {
	var buf bytes.Buffer
	buf.WriteString("账期,订单号,订单行号,订单类型,产品销售收入,平台费,伙伴结算金额(含税),账单状态\n")
	for i := 0; i < 100_000; i++ {
		fmt.Fprintf(&buf, "202610,SYN%09d,SYN%09d-000001,NEW,1199.88,59.99,1139.89,待会签\n", i, i)
	}
	m := DefaultMapping()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := Parse(buf.Bytes(), m, oct, catalog.General); err != nil {
			b.Fatal(err)
		}
	}
}
