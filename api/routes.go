package api

import (
	"github.com/gin-gonic/gin"

	"github.com/kooflow/kooflow/api/bills"
	instconsole "github.com/kooflow/kooflow/api/console"
	"github.com/kooflow/kooflow/api/gateway"
	"github.com/kooflow/kooflow/api/httpx"
	"github.com/kooflow/kooflow/internal/app"
)

// mountRoutes mounts the production interface and the console areas. Each area lives in its own package under
// api/ and is mounted here with one line.
func mountRoutes(r *gin.Engine, console *httpx.Console, d app.Deps, inbox *gateway.Inbox) {
	gateway.Mount(r, console, d, inbox)
	instconsole.Mount(console, d)
	bills.Mount(console, d)
	bills.MountRecon(console, d)
}
