// Package app holds what a serving kooflow process (API or worker) builds once at start and hands to each of its
// parts: the configuration, the logger, the PostgreSQL pool, the Temporal client and the product catalog. Having
// one type for them keeps every part's wiring the same and puts each resource's lifetime in cmd, where the
// process starts and stops it.
package app

import (
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/kooflow/kooflow/internal/metrics"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.temporal.io/sdk/client"

	"github.com/kooflow/kooflow/internal/catalog"
	"github.com/kooflow/kooflow/internal/config"
	"github.com/kooflow/kooflow/internal/secrets"
)

// Deps are a process's long-lived dependencies. The process that builds them owns their lifetimes; the parts
// only use them.
type Deps struct {
	Config   config.Config
	Log      *slog.Logger
	Pool     *pgxpool.Pool
	Temporal client.Client
	// Keys seal and open the credentials kept in PostgreSQL (appInfo); nil in a process that needs none.
	Keys *secrets.Keyring
	// Catalog is the product catalog loaded at start (catalog.Open); CatalogSource says where it came from.
	Catalog       *catalog.Catalog
	CatalogSource string
	// Now is the clock; nil means time.Now. Tests set it to move a part's notion of today.
	Now func() time.Time
	// APIMetrics records the API process's metrics (api.New sets it for the routes it mounts); nil records none.
	APIMetrics *metrics.API
	// WorkerMetrics records the worker process's metrics (cmd builds it with the Temporal client); nil records none.
	WorkerMetrics *metrics.Worker
	// Tracer is the process's tracer provider (internal/tracing); nil when tracing is off. The Temporal client then
	// carries the tracing interceptor.
	Tracer trace.TracerProvider
}

// Clock returns d.Now, or time.Now when it is not set.
func (d Deps) Clock() func() time.Time {
	if d.Now != nil {
		return d.Now
	}
	return time.Now
}
