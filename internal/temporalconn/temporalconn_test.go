package temporalconn_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/kooflow/kooflow/internal/config"
	"github.com/kooflow/kooflow/internal/temporalconn"
	"github.com/kooflow/kooflow/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

type pki struct {
	dir  string
	ca   *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kooflow test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(der)
	p := &pki{dir: t.TempDir(), ca: ca, key: key, pool: x509.NewCertPool()}
	p.pool.AddCert(ca)
	p.write(t, "ca.pem", "CERTIFICATE", der)
	return p
}

func (p *pki) write(t *testing.T, name, typ string, der []byte) string {
	t.Helper()
	f := filepath.Join(p.dir, name)
	if err := os.WriteFile(f, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// issue makes a leaf certificate; it returns it for a listener and writes it and its key as PEM files.
func (p *pki) issue(t *testing.T, name string, serial int64, usage x509.ExtKeyUsage) (tls.Certificate, string, string) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
		DNSNames: []string{name}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	certFile := p.write(t, name+".pem", "CERTIFICATE", der)
	keyFile := p.write(t, name+"-key.pem", "PRIVATE KEY", kder)
	c, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	return c, certFile, keyFile
}

// tlsFront is a TLS listener requiring a client certificate from p's CA, forwarding each connection to the
// real Temporal dev server: a secured cluster as far as the client can tell.
func tlsFront(t *testing.T, p *pki, server tls.Certificate, backend string) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{server},
		ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: p.pool, NextProtos: []string{"h2"}, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				if err := c.(*tls.Conn).Handshake(); err != nil {
					return
				}
				b, err := net.Dial("tcp", backend)
				if err != nil {
					return
				}
				defer b.Close()
				go func() { _, _ = io.Copy(b, c) }()
				_, _ = io.Copy(c, b)
			}()
		}
	}()
	return ln.Addr().String()
}

// TestDialWithMutualTLS dials a TLS listener that requires a client certificate, with the options built from
// TEMPORAL_TLS_CA, TEMPORAL_TLS_CERT, TEMPORAL_TLS_KEY and TEMPORAL_TLS_SERVER_NAME, and checks the cluster's
// health through it; without the client certificate, or trusting another CA, the dial fails.
func TestDialWithMutualTLS(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the Temporal dev server")
	}
	p := newPKI(t)
	server, _, _ := p.issue(t, "temporal.test", 2, x509.ExtKeyUsageServerAuth)
	_, certFile, keyFile := p.issue(t, "kooflow-worker", 3, x509.ExtKeyUsageClientAuth)
	addr := tlsFront(t, p, server, testenv.TemporalAddress(t))

	dial := func(env map[string]string) error {
		env[config.EnvTemporalAddress] = addr
		cfg, err := config.FromEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
		if err != nil {
			return err
		}
		o, err := temporalconn.Options(cfg, nil)
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, err := client.DialContext(ctx, o)
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.CheckHealth(ctx, &client.CheckHealthRequest{})
		return err
	}
	if err := dial(map[string]string{config.EnvTemporalTLSCA: filepath.Join(p.dir, "ca.pem"), config.EnvTemporalTLSCert: certFile,
		config.EnvTemporalTLSKey: keyFile, config.EnvTemporalServerName: "temporal.test"}); err != nil {
		t.Fatalf("mTLS dial: %v", err)
	}
	if err := dial(map[string]string{config.EnvTemporalTLSCA: filepath.Join(p.dir, "ca.pem"),
		config.EnvTemporalServerName: "temporal.test"}); err == nil {
		t.Fatal("a dial without the client certificate succeeded")
	}
	other := newPKI(t)
	if err := dial(map[string]string{config.EnvTemporalTLSCA: filepath.Join(other.dir, "ca.pem"), config.EnvTemporalTLSCert: certFile,
		config.EnvTemporalTLSKey: keyFile, config.EnvTemporalServerName: "temporal.test"}); err == nil ||
		!strings.Contains(err.Error(), "certificate") {
		t.Fatalf("a dial trusting another CA: %v", err)
	}
}

func TestOptionsRefuseHalfAClientCertificate(t *testing.T) {
	_, err := config.FromEnv(func(k string) (string, bool) {
		v, ok := map[string]string{config.EnvTemporalTLSCert: "/x.pem"}[k]
		return v, ok
	})
	if err == nil || !strings.Contains(err.Error(), config.EnvTemporalTLSKey) {
		t.Fatalf("a certificate without its key: %v", err)
	}
}

func TestAPIKeyImpliesTLS(t *testing.T) {
	cfg, err := config.FromEnv(func(k string) (string, bool) {
		v, ok := map[string]string{config.EnvTemporalAPIKey: "secret-api-key"}[k]
		return v, ok
	})
	if err != nil {
		t.Fatal(err)
	}
	o, err := temporalconn.Options(cfg, nil)
	if err != nil || o.ConnectionOptions.TLS == nil || o.Credentials == nil {
		t.Fatalf("options with an API key: TLS %v, credentials %v, %v", o.ConnectionOptions.TLS, o.Credentials, err)
	}
}
