package market

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// File names EnsureTLS keeps in its directory.
const (
	CAFileName        = "emulator-ca.pem"
	serverCertName    = "emulator-server.pem"
	serverKeyName     = "emulator-server-key.pem"
	certValidity      = 365 * 24 * time.Hour
	certRenewalMargin = 7 * 24 * time.Hour
)

// TLS is the emulator's server identity: a private CA and a server certificate for loopback signed by it.
// CAFile is what the seller's client is told to trust (KOOGALLERY_API_CA_FILE); nothing else is trusted, and
// verification stays on.
type TLS struct {
	CAFile string
	Config *tls.Config
	CAPool *x509.CertPool
}

// EnsureTLS loads the CA and server certificate kept in dir, or creates them when they are missing, unreadable,
// near expiry or do not cover 127.0.0.1, ::1 and localhost. Reusing them across restarts matters: a worker that
// already loaded the CA file keeps trusting a restarted emulator.
func EnsureTLS(dir string) (*TLS, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("emulator TLS: %w", err)
	}
	caPath := filepath.Join(dir, CAFileName)
	certPath, keyPath := filepath.Join(dir, serverCertName), filepath.Join(dir, serverKeyName)
	if t, err := loadTLS(caPath, certPath, keyPath); err == nil {
		return t, nil
	}
	if err := createTLS(caPath, certPath, keyPath); err != nil {
		return nil, err
	}
	return loadTLS(caPath, certPath, keyPath)
}

func loadTLS(caPath, certPath, keyPath string) (*TLS, error) {
	caPEM, err := os.ReadFile(caPath)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, errors.New("CA file holds no certificate")
	}
	pair, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err != nil {
		return nil, err
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, err
	}
	if time.Until(leaf.NotAfter) < certRenewalMargin {
		return nil, errors.New("server certificate near expiry")
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: "localhost"}); err != nil {
		return nil, err
	}
	for _, ip := range []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback} {
		if !slices.ContainsFunc(leaf.IPAddresses, ip.Equal) {
			return nil, errors.New("server certificate does not cover loopback")
		}
	}
	return &TLS{
		CAFile: caPath,
		CAPool: pool,
		Config: &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12},
	}, nil
}

func createTLS(caPath, certPath, keyPath string) error {
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("emulator TLS: CA key: %w", err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "kooflow KooGallery emulator CA", Organization: []string{"kooflow"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(certValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return fmt.Errorf("emulator TLS: CA certificate: %w", err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("emulator TLS: server key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: "127.0.0.1", Organization: []string{"kooflow"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(certValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		DNSNames:     []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return fmt.Errorf("emulator TLS: server certificate: %w", err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return fmt.Errorf("emulator TLS: %w", err)
	}
	// The CA's private key is not kept: a new server certificate means a new CA, so a leaked state directory
	// cannot mint certificates for other names.
	if err := writePEM(keyPath, "EC PRIVATE KEY", keyDER, 0o600); err != nil {
		return err
	}
	if err := writePEM(certPath, "CERTIFICATE", der, 0o644); err != nil {
		return err
	}
	return writePEM(caPath, "CERTIFICATE", caDER, 0o644)
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 126))
	return n
}

// writePEM writes atomically, so a reader never sees half a file.
func writePEM(path, typ string, der []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), mode); err != nil {
		return fmt.Errorf("emulator TLS: write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("emulator TLS: %w", err)
	}
	return nil
}

// Server is a running HTTPS server for a Market.
type Server struct {
	// URL is the base URL, e.g. https://127.0.0.1:8090 — KOOGALLERY_API_ENDPOINT.
	URL string
	// CAFile is the PEM file to trust — KOOGALLERY_API_CA_FILE.
	CAFile string
	// Client is an HTTP client that trusts exactly the emulator's CA.
	Client *http.Client

	srv  *http.Server
	done chan error
}

// Serve builds a Market and serves it over HTTPS on addr (see StartTLS): the emulated marketplace in one call,
// for the emulator command and for tests. Close the Server to stop it.
func Serve(o Options, addr, certDir string) (*Market, *Server, error) {
	m, err := New(o)
	if err != nil {
		return nil, nil, err
	}
	srv, err := m.StartTLS(addr, certDir)
	if err != nil {
		return nil, nil, err
	}
	return m, srv, nil
}

// StartTLS serves the Market's handler over HTTPS on addr ("127.0.0.1:0" picks a free port), with the
// certificate EnsureTLS keeps in certDir.
func (m *Market) StartTLS(addr, certDir string) (*Server, error) {
	t, err := EnsureTLS(certDir)
	if err != nil {
		return nil, err
	}
	return ServeTLS(m.Handler(), addr, t)
}

// ServeTLS serves any handler (the emulator's combined one, say) over HTTPS with t.
func ServeTLS(h http.Handler, addr string, t *TLS) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("emulator market: listen %s: %w", addr, err)
	}
	srv := &http.Server{Handler: h, TLSConfig: t.Config.Clone(), ReadHeaderTimeout: 10 * time.Second}
	s := &Server{
		URL:    "https://" + ln.Addr().String(),
		CAFile: t.CAFile,
		Client: &http.Client{
			Timeout:   30 * time.Second,
			Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: t.CAPool, MinVersion: tls.VersionTLS12}},
		},
		srv:  srv,
		done: make(chan error, 1),
	}
	go func() {
		err := srv.ServeTLS(ln, "", "")
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		s.done <- err
	}()
	return s, nil
}

// Done reports the server's end (nil after Close).
func (s *Server) Done() <-chan error { return s.done }

// Close stops the server, letting requests in flight finish for up to five seconds.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil {
		return s.srv.Close()
	}
	return nil
}
