// Package cellsafe keeps spreadsheet exports from running what customers, the marketplace or operators typed:
// a text cell that starts like a formula (= + - @, or a tab or carriage return before one) would be evaluated
// by Excel, LibreOffice or Google Sheets when the file is opened or converted (CSV injection). Every CSV and
// XLSX export passes its text cells through Neutralize.
package cellsafe

import (
	"strings"

	"github.com/shopspring/decimal"
)

// Neutralize returns v with a leading apostrophe when a spreadsheet could read it as a formula: it starts with
// = + - @, tab or carriage return and is not a plain number (a negative amount stays a number).
func Neutralize(v string) string {
	if v == "" || !strings.ContainsRune("=+-@\t\r", rune(v[0])) {
		return v
	}
	if _, err := decimal.NewFromString(v); err == nil && !strings.ContainsAny(v, "eE") {
		return v
	}
	return "'" + v
}

// Row neutralizes every cell of a record, returning a new slice.
func Row(rec []string) []string {
	out := make([]string, len(rec))
	for i, v := range rec {
		out[i] = Neutralize(v)
	}
	return out
}
