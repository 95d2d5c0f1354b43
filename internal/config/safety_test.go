package config

import (
	"strings"
	"testing"
	"time"
)

func fromMap(m map[string]string) (Config, error) {
	return FromEnv(func(k string) (string, bool) { v, ok := m[k]; return v, ok })
}

func TestSafetyDefaultsAndValues(t *testing.T) {
	c, err := fromMap(nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Safety.MessageRetentionMonths != 13 || c.Safety.Temporal.TLS || c.Safety.DB != (DBSession{}) {
		t.Fatalf("defaults %+v", c.Safety)
	}
	c, err = fromMap(map[string]string{EnvMessageRetention: "24mo", EnvTemporalTLSCA: "/ca.pem", EnvCodecOrigins: "http://127.0.0.1:8233/, https://ui.example",
		EnvDBMaxConns: "12", EnvDBAcquireTimeout: "2s", EnvDBStatementTimeout: "5s", EnvDBIdleInTxTimeout: "10s"})
	if err != nil {
		t.Fatal(err)
	}
	s := c.Safety
	if s.MessageRetentionMonths != 24 || !s.Temporal.TLS || len(s.CodecOrigins) != 2 || s.CodecOrigins[0] != "http://127.0.0.1:8233" ||
		s.DB.MaxConns != 12 || s.DB.AcquireTimeout != 2*time.Second || s.DB.StatementTimeout != 5*time.Second || s.DB.IdleInTransactionTimeout != 10*time.Second {
		t.Fatalf("values %+v", s)
	}
}

func TestSafetyRefusesBadValues(t *testing.T) {
	for name, env := range map[string]map[string]string{
		"retention":        {EnvMessageRetention: "a year"},
		"negative":         {EnvMessageRetention: "-1"},
		"cert without key": {EnvTemporalTLSCert: "/c.pem"},
		"tls off with ca":  {EnvTemporalTLS: "false", EnvTemporalTLSCA: "/ca.pem"},
		"origin":           {EnvCodecOrigins: "ui.example"},
		"pool":             {EnvDBMaxConns: "0"},
		"timeout":          {EnvDBStatementTimeout: "5"},
	} {
		_, err := fromMap(env)
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		for k := range env {
			if !strings.Contains(err.Error(), k) {
				t.Errorf("%s: %v does not name %s", name, err, k)
			}
		}
	}
}
