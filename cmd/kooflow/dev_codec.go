package main

import (
	"strconv"
	"strings"

	"github.com/kooflow/kooflow/internal/config"
)

// devUIToken is the console token `kooflow dev` gives its Temporal web UI for the payload codec: read to decode
// what it shows, operate to encode the signals it sends.
const devUIToken = "kooflow-dev-temporal-ui-token"

// devCodecEnv lets the dev UI's origin call the codec from the browser.
func devCodecEnv(o devOptions, set func(k, v string)) {
	set(config.EnvCodecOrigins, "http://127.0.0.1:"+strconv.Itoa(o.uiPort)+",http://localhost:"+strconv.Itoa(o.uiPort))
}

// devCodecEndpoint is the codec endpoint the dev UI is started with: kooflow's /codec on the console's listener,
// with the UI's token in the path (the UI sends no Authorization header of its own). Empty when the configured
// tokens do not include it (KOOFLOW_CONSOLE_TOKENS set by hand): the UI then shows encrypted payloads.
func devCodecEndpoint(env map[string]string) string {
	if !strings.Contains(env[config.EnvConsoleTokens], ":"+devUIToken) {
		return ""
	}
	addr := env[config.EnvConsoleAddr]
	if addr == "" {
		addr = env[config.EnvHTTPAddr]
	}
	return "http://" + addr + "/codec/token/" + devUIToken
}
