package cellsafe

import "testing"

func TestNeutralize(t *testing.T) {
	for in, want := range map[string]string{
		"":                     "",
		"O-123":                "O-123",
		"-450.00":              "-450.00",
		"+3":                   "+3",
		"-1e3":                 "'-1e3",
		"=HYPERLINK(\"x\")":    "'=HYPERLINK(\"x\")",
		"+cmd|' /C calc'!A0":   "'+cmd|' /C calc'!A0",
		"-2+3":                 "'-2+3",
		"@SUM(A1:A2)":          "'@SUM(A1:A2)",
		"\t=1":                 "'\t=1",
		"refund = 3 days late": "refund = 3 days late",
	} {
		if got := Neutralize(in); got != want {
			t.Errorf("%q → %q, want %q", in, got, want)
		}
	}
}
