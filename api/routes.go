package api

import (
	"github.com/gin-gonic/gin"
)

// mountRoutes mounts the production interface and the console areas. Each area lives in its own package under
// api/ and is mounted here with one line.
func mountRoutes(r *gin.Engine, console *gin.RouterGroup, d Deps) error {
	return nil
}
