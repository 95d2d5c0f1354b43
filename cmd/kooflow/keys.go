package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/kooflow/kooflow/internal/config"
	"github.com/kooflow/kooflow/internal/secrets"
	"github.com/kooflow/kooflow/internal/store"
)

// newKeysCmd manages the data keys that seal credentials at rest (docs/security.md, "Key rotation").
func newKeysCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Generate data keys and re-seal stored credentials under the current one",
	}
	var id string
	gen := &cobra.Command{
		Use:   "generate",
		Short: "Print a new data key entry (keyid:base64) for " + config.EnvDataKeys,
		RunE: func(cmd *cobra.Command, _ []string) error {
			spec, err := secrets.NewKeySpec(id)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), spec)
			return err
		},
	}
	gen.Flags().StringVar(&id, "id", time.Now().UTC().Format("2006-01"), "key id (1-32 of A-Z a-z 0-9 . _ -)")
	var batch int
	rotate := &cobra.Command{
		Use:   "rotate",
		Short: "Re-seal every stored appInfo under the first key of " + config.EnvDataKeys + " (and seal plain ones)",
		Long: "Put the new key first in " + config.EnvDataKeys + " (keeping the old ones after it), restart the API and\n" +
			"worker, run this, then remove the old keys. Every key a value was sealed under must still be configured.",
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, log, err := setup()
			if err != nil {
				return err
			}
			if err := cfg.Require(config.EnvDatabaseURL, config.EnvDataKeys); err != nil {
				return err
			}
			keys, err := cfg.Keyring()
			if err != nil {
				return err
			}
			pool, err := store.Open(cmd.Context(), cfg.DatabaseURL.Reveal())
			if err != nil {
				return err
			}
			defer pool.Close()
			n, err := (&store.Store{Pool: pool, Keys: keys}).SealAppInfo(cmd.Context(), batch)
			if err != nil {
				return fmt.Errorf("after re-sealing %d values: %w", n, err)
			}
			log.Info("credentials sealed under the current data key", "key_id", keys.CurrentID(), "resealed", n)
			return nil
		},
	}
	rotate.Flags().IntVar(&batch, "batch", 500, "rows per transaction")
	cmd.AddCommand(gen, rotate)
	return cmd
}
