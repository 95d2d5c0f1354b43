package kit

import (
	"crypto/rsa"
	"fmt"
	"os"

	"github.com/kooflow/kooflow/internal/config"
)

// LoadKey reads the seller's Kit private key from KOOGALLERY_KIT_PRIVATE_KEY or the file
// KOOGALLERY_KIT_PRIVATE_KEY_FILE names. It returns nil without error when neither is set: applicationSync is
// then refused, since its client secret could not be checked or used.
func LoadKey(c config.KitConfig) (*rsa.PrivateKey, error) {
	text := c.PrivateKey.Reveal()
	if c.PrivateKeyFile != "" {
		b, err := os.ReadFile(c.PrivateKeyFile)
		if err != nil {
			return nil, fmt.Errorf("read %s (%s): %w", config.EnvKitPrivateKeyFile, c.PrivateKeyFile, err)
		}
		text = string(b)
	}
	if text == "" {
		return nil, nil
	}
	key, err := ParsePrivateKey(text)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", config.EnvKitPrivateKey, err)
	}
	return key, nil
}
