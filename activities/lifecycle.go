package activities

import (
	"context"
	"errors"
	"log/slog"

	"github.com/kooflow/kooflow/internal/metrics"

	"go.temporal.io/sdk/temporal"

	"github.com/kooflow/kooflow/internal/catalog"
	"github.com/kooflow/kooflow/internal/koogallery/orderquery"
	"github.com/kooflow/kooflow/internal/provisioning"
	"github.com/kooflow/kooflow/internal/store"
)

// Lifecycle holds the instance lifecycle workflow's activities and their dependencies: the marketplace's order
// query, the provisioners, the catalog, and the PostgreSQL read model.
type Lifecycle struct {
	Store *store.Store
	// Orders queries the marketplace; nil when no AK/SK is configured, which parks every order query with a
	// message that says so.
	Orders  orderquery.Querier
	Catalog *catalog.Catalog
	// Builtin answers dial tests and products provisioned "builtin"; Webhook (nil when KOOFLOW_PROVISIONER_URL is
	// not set) the products provisioned "webhook".
	Builtin provisioning.Provisioner
	Webhook provisioning.Provisioner
	// BuiltinByDefault lets the built-in provisioner serve products whose catalog entry names no provisioning
	// (and unknown products) when no webhook is set: KOOFLOW_PROVISIONER=builtin, which kooflow dev sets.
	// Otherwise such orders park, rather than deliver made-up access data.
	BuiltinByDefault bool
	Log              *slog.Logger
	// Metrics counts provisioning calls and order queries; nil counts nothing.
	Metrics *metrics.Worker
	// Writes applies the read-model writes of Record and of the activities that record along with their work;
	// nil means Store. The workflow's unit tests give an in-memory read model here.
	Writes WriteApplier
}

// WriteApplier applies one read-model write (store.Store.Apply).
type WriteApplier interface {
	Apply(ctx context.Context, w store.Write) error
}

func (a *Lifecycle) writes() WriteApplier {
	if a.Writes != nil {
		return a.Writes
	}
	return a.Store
}

// ErrNeedsPerson is the ApplicationError type of a failure that retrying cannot fix: the workflow parks the
// instance with the error's message until an operator resumes or skips the step.
const ErrNeedsPerson = "kooflow.NeedsPerson"

// needsPerson builds a non-retryable error whose message is what the operator reads on the parked instance.
func needsPerson(msg string, cause error) error {
	return temporal.NewNonRetryableApplicationError(msg, ErrNeedsPerson, cause)
}

// IsNeedsPerson reports whether err (possibly wrapped in an ActivityError) needs a person.
func IsNeedsPerson(err error) bool {
	var app *temporal.ApplicationError
	return errors.As(err, &app) && app.Type() == ErrNeedsPerson
}

func (a *Lifecycle) log() *slog.Logger {
	if a.Log != nil {
		return a.Log
	}
	return slog.Default()
}
