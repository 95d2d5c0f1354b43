package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"github.com/kooflow/kooflow/internal/config"
)

// newHealthcheckCmd probes the local API's /healthz; container images without a shell or curl use it as their
// health check.
func newHealthcheckCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "healthcheck",
		Short: "Exit 0 if the API on KOOFLOW_HTTP_ADDR answers /healthz",
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.FromEnv(config.OSLookup)
			if err != nil {
				return err
			}
			host, port, err := net.SplitHostPort(cfg.HTTPAddr)
			if err != nil {
				return fmt.Errorf("%s=%q: %w", config.EnvHTTPAddr, cfg.HTTPAddr, err)
			}
			if host == "" || host == "0.0.0.0" || host == "::" {
				host = "127.0.0.1"
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 3*time.Second)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+net.JoinHostPort(host, port)+"/healthz", nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return err
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("healthz answered %d", resp.StatusCode)
			}
			return nil
		},
	}
}
