// Package temporalconn builds the options every kooflow Temporal client is dialled with: address and
// namespace, TLS or mTLS and an API key when configured (a secured cluster or Temporal Cloud), and the
// encrypting data converter (internal/payloadcodec), so no process talks to Temporal in plain by accident.
package temporalconn

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/kooflow/kooflow/internal/config"
	"github.com/kooflow/kooflow/internal/payloadcodec"
	"github.com/kooflow/kooflow/internal/secrets"
)

// Options returns the client options for cfg. keys seal payloads (payloadcodec); nil leaves them plain, which
// only a process that handles no payload of the deployment's workflows may do.
func Options(cfg config.Config, keys *secrets.Keyring) (client.Options, error) {
	o := client.Options{HostPort: cfg.TemporalAddress, Namespace: cfg.TemporalNamespace}
	if err := Secure(&o, cfg, keys); err != nil {
		return o, err
	}
	return o, nil
}

// Secure adds cfg's TLS, API key and keys' data converter to o. Options are not inherited by a client made with
// client.NewClientFromExisting, so each such client must get them again; the connection's TLS and API key are
// shared, so only the converters matter there.
func Secure(o *client.Options, cfg config.Config, keys *secrets.Keyring) error {
	t := cfg.Safety.Temporal
	if t.TLS {
		tc, err := TLSConfig(t, cfg.TemporalAddress)
		if err != nil {
			return err
		}
		o.ConnectionOptions.TLS = tc
	}
	if t.APIKey != "" {
		o.Credentials = client.NewAPIKeyStaticCredentials(t.APIKey.Reveal())
	}
	Encrypt(o, keys)
	return nil
}

// Encrypt sets o's data converter and failure converter to seal with keys: payloads, and failure messages and
// stack traces (which may quote them). nil keys change nothing.
func Encrypt(o *client.Options, keys *secrets.Keyring) {
	if keys == nil {
		return
	}
	dc := payloadcodec.DataConverter(keys)
	o.DataConverter = dc
	o.FailureConverter = temporal.NewDefaultFailureConverter(temporal.DefaultFailureConverterOptions{
		DataConverter: dc, EncodeCommonAttributes: true})
}

// TLSConfig builds the TLS configuration for addr from t: the CA bundle (else the system roots), the client
// certificate for mTLS, the server name (else addr's host).
func TLSConfig(t config.TemporalSecurity, addr string) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName}
	if tc.ServerName == "" {
		if host, _, err := net.SplitHostPort(addr); err == nil {
			tc.ServerName = host
		}
	}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", config.EnvTemporalTLSCA, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s: %s holds no PEM certificate", config.EnvTemporalTLSCA, t.CAFile)
		}
		tc.RootCAs = pool
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("%s / %s: %w", config.EnvTemporalTLSCert, config.EnvTemporalTLSKey, err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}
