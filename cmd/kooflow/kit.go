package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/kooflow/kooflow/internal/config"
	"github.com/kooflow/kooflow/internal/kit"
)

// newKitCmd groups the joint-operation Kit commands.
func newKitCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "kit",
		Short: "Joint-operation (联营) Kit tools: the RSA key the marketplace encrypts client secrets for",
	}
	cmd.AddCommand(newKitKeygenCmd())
	return cmd
}

func newKitKeygenCmd() *cobra.Command {
	var bits int
	cmd := &cobra.Command{
		Use:   "keygen",
		Short: "Print a new Kit RSA key pair: the private key for kooflow and the public key to upload",
		Long: "Generates an RSA key (at least 3072 bits, as the marketplace requires). The private key (PKCS#8 PEM) goes into " +
			config.EnvKitPrivateKey + " or the file named by " + config.EnvKitPrivateKeyFile + "; the public key (Base64 " +
			"X.509) is uploaded in the seller console for the product, and the marketplace encrypts each application's " +
			"clientSecret with it.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			kp, err := kit.GenerateKey(bits)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "# Private key: keep it secret; set %s to it or put it in the file %s names.\n", config.EnvKitPrivateKey, config.EnvKitPrivateKeyFile)
			fmt.Fprint(out, kp.PrivatePEM)
			fmt.Fprintln(out, "# Public key to upload in the seller console (Base64 X.509 SubjectPublicKeyInfo):")
			fmt.Fprintln(out, kp.PublicBase64)
			fmt.Fprintln(out, "# The same public key as PEM:")
			fmt.Fprint(out, kp.PublicPEM)
			return nil
		},
	}
	cmd.Flags().IntVar(&bits, "bits", 3072, "key size in bits (at least 3072)")
	return cmd
}
