package api

import (
	"github.com/gin-gonic/gin"

	"github.com/kooflow/kooflow/api/bills"
	instconsole "github.com/kooflow/kooflow/api/console"
	"github.com/kooflow/kooflow/api/gateway"
)

// mountRoutes mounts the production interface and the console areas. Each area lives in its own package under
// api/ and is mounted here with one line.
func mountRoutes(r *gin.Engine, console *gin.RouterGroup, d Deps) error {
	gateway.Mount(r, console, gateway.Deps{Config: d.Config, Log: d.Log, Pool: d.Pool, Temporal: d.Temporal, Background: d.Background})
	if err := instconsole.Mount(console, instconsole.Deps{Config: d.Config, Log: d.Log, Pool: d.Pool, Temporal: d.Temporal}); err != nil {
		return err
	}
	if err := bills.Mount(console, bills.Deps{Config: d.Config, Log: d.Log, Pool: d.Pool, Temporal: d.Temporal}); err != nil {
		return err
	}
	return nil
}
