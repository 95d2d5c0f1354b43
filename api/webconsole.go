package api

import (
	"github.com/gin-gonic/gin"

	"github.com/kooflow/kooflow/api/webconsole"
	"github.com/kooflow/kooflow/internal/app"
	"github.com/kooflow/kooflow/internal/config"
)

// mountWebConsole serves the web console's pages at /console/ beside the JSON API at /console/v1.
func mountWebConsole(r *gin.Engine, d app.Deps, tokens []config.ConsoleToken) error {
	_, err := webconsole.Mount(r, d, tokens)
	return err
}
