package main

import (
	"go.temporal.io/sdk/client"

	"github.com/kooflow/kooflow/internal/config"
	"github.com/kooflow/kooflow/internal/temporalconn"
)

// temporalOptions are the options every Temporal client of this process is dialled with: TLS and API key when
// configured, and payloads sealed under the data keys when they are configured (docs/security.md, "Temporal
// payloads"). A process without data keys sends plain payloads, which the others still read; it cannot read
// theirs.
func temporalOptions(cfg config.Config) (client.Options, error) {
	keys, err := cfg.Keyring()
	if err != nil {
		return client.Options{}, err
	}
	return temporalconn.Options(cfg, keys)
}
