// Package migrations embeds kooflow's SQL migrations so the binary carries its own schema. They are applied by
// goose (store.Migrate), numbered, each with an Up and a Down section.
package migrations

import "embed"

// FS holds every *.sql file of this directory.
//
//go:embed *.sql
var FS embed.FS
