package api

import (
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/kooflow/kooflow/api/httpx"
	"github.com/kooflow/kooflow/api/usage"
	"github.com/kooflow/kooflow/internal/app"
	"github.com/kooflow/kooflow/internal/config"
	"github.com/kooflow/kooflow/internal/metrics"
)

// mountUsage mounts the usage intake at /usage/v1 behind the console's tokens: the seller's metering systems
// hold a token with the scope "usage" and nothing else.
func mountUsage(r *gin.Engine, m *metrics.API, tokens []config.ConsoleToken, d app.Deps) {
	usage.Mount(httpx.NewConsole(r.Group("", consoleMetrics(m)), usage.Prefix, tokens), d)
}

// isUsagePath says whether p belongs to the usage intake, which is served with the console.
func isUsagePath(p string) bool {
	return p == usage.Prefix || strings.HasPrefix(p, usage.Prefix+"/")
}
