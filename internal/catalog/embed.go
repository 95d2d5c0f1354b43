package catalog

import _ "embed"

// DevCatalog is the catalog `kooflow dev` and the emulator use when KOOFLOW_CATALOG_FILE is not set.
//
//go:embed dev-catalog.json
var DevCatalog []byte
