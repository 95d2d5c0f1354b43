package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Environment of the Temporal connection's security, the payload codec server, the message log's retention and
// the database sessions (docs/security.md).
const (
	EnvTemporalTLSCert    = "TEMPORAL_TLS_CERT"
	EnvTemporalTLSKey     = "TEMPORAL_TLS_KEY"
	EnvTemporalTLSCA      = "TEMPORAL_TLS_CA"
	EnvTemporalTLS        = "TEMPORAL_TLS"
	EnvTemporalServerName = "TEMPORAL_TLS_SERVER_NAME"
	EnvTemporalAPIKey     = "TEMPORAL_API_KEY"
	EnvCodecOrigins       = "KOOFLOW_CODEC_CORS_ORIGINS"
	EnvMessageRetention   = "KOOFLOW_MESSAGE_RETENTION"
	EnvDBMaxConns         = "KOOFLOW_DB_MAX_CONNS"
	EnvDBAcquireTimeout   = "KOOFLOW_DB_ACQUIRE_TIMEOUT"
	EnvDBStatementTimeout = "KOOFLOW_DB_STATEMENT_TIMEOUT"
	EnvDBIdleInTxTimeout  = "KOOFLOW_DB_IDLE_IN_TRANSACTION_TIMEOUT"

	// DefaultMessageRetentionMonths is how many months of message log the retention job keeps.
	DefaultMessageRetentionMonths = 13
)

// TemporalSecurity configures how a process reaches Temporal beyond its address: TLS (server verification
// with an optional CA, client certificate for mTLS) and an API key (Temporal Cloud).
type TemporalSecurity struct {
	// TLS is on when any of the files is set, or TEMPORAL_TLS=true (system roots, no client certificate).
	TLS bool
	// CertFile and KeyFile are the client certificate and key (PEM) for mTLS; both or neither.
	CertFile, KeyFile string
	// CAFile is a PEM bundle that verifies the server instead of the system roots.
	CAFile string
	// ServerName overrides the name the server's certificate is checked against (default: the address's host).
	ServerName string
	// APIKey is sent as "Authorization: Bearer" on every call; it implies TLS.
	APIKey Secret
}

// DBSession bounds what one process's PostgreSQL pool uses and waits for. Zero values keep what DATABASE_URL
// says (pool_max_conns, statement_timeout, …), or pgx's and PostgreSQL's defaults.
type DBSession struct {
	MaxConns                 int32
	AcquireTimeout           time.Duration
	StatementTimeout         time.Duration
	IdleInTransactionTimeout time.Duration
}

// Safety is the configuration of production safety measures (docs/security.md).
type Safety struct {
	Temporal TemporalSecurity
	// CodecOrigins are the web origins (the Temporal UI's, e.g. http://127.0.0.1:8233) allowed to call the payload
	// codec endpoints from a browser.
	CodecOrigins []string
	// MessageRetentionMonths is how many whole months of message log are kept (KOOFLOW_MESSAGE_RETENTION, "13"
	// or "13mo"; 0 keeps everything).
	MessageRetentionMonths int
	DB                     DBSession
}

func safetyFromEnv(get func(name, def string) string, errs *[]string) Safety {
	s := Safety{Temporal: TemporalSecurity{
		CertFile:   get(EnvTemporalTLSCert, ""),
		KeyFile:    get(EnvTemporalTLSKey, ""),
		CAFile:     get(EnvTemporalTLSCA, ""),
		ServerName: get(EnvTemporalServerName, ""),
		APIKey:     Secret(get(EnvTemporalAPIKey, "")),
	}}
	t := &s.Temporal
	switch v := strings.ToLower(get(EnvTemporalTLS, "")); v {
	case "":
		t.TLS = t.CertFile != "" || t.CAFile != "" || t.APIKey != ""
	case "true", "on", "1", "yes":
		t.TLS = true
	case "false", "off", "0", "no":
		if t.CertFile != "" || t.CAFile != "" || t.APIKey != "" {
			*errs = append(*errs, fmt.Sprintf("%s=%s contradicts %s, %s or %s, which need TLS", EnvTemporalTLS, v,
				EnvTemporalTLSCert, EnvTemporalTLSCA, EnvTemporalAPIKey))
		}
	default:
		*errs = append(*errs, fmt.Sprintf("%s=%q must be true or false", EnvTemporalTLS, v))
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		*errs = append(*errs, fmt.Sprintf("%s and %s are set together (the client certificate and its key) or not at all",
			EnvTemporalTLSCert, EnvTemporalTLSKey))
	}
	for _, o := range strings.Split(get(EnvCodecOrigins, ""), ",") {
		if o = strings.TrimRight(strings.TrimSpace(o), "/"); o == "" {
			continue
		}
		if !strings.HasPrefix(o, "http://") && !strings.HasPrefix(o, "https://") {
			*errs = append(*errs, fmt.Sprintf("%s: %q is not an origin like https://temporal-ui.example", EnvCodecOrigins, o))
			continue
		}
		s.CodecOrigins = append(s.CodecOrigins, o)
	}
	months := strings.TrimSuffix(strings.ToLower(get(EnvMessageRetention, strconv.Itoa(DefaultMessageRetentionMonths))), "mo")
	if n, err := strconv.Atoi(months); err != nil || n < 0 || n > 1200 {
		*errs = append(*errs, fmt.Sprintf("%s=%q must be a number of months like 13 (0 keeps everything)", EnvMessageRetention, months))
		s.MessageRetentionMonths = DefaultMessageRetentionMonths
	} else {
		s.MessageRetentionMonths = n
	}
	if v := get(EnvDBMaxConns, ""); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 10000 {
			*errs = append(*errs, fmt.Sprintf("%s=%q must be a number of connections from 1", EnvDBMaxConns, v))
		}
		s.DB.MaxConns = int32(n)
	}
	dur := func(name string) time.Duration {
		v := get(name, "")
		if v == "" {
			return 0
		}
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			*errs = append(*errs, fmt.Sprintf("%s=%q is not a duration like 5s", name, v))
			return 0
		}
		return d
	}
	s.DB.AcquireTimeout = dur(EnvDBAcquireTimeout)
	s.DB.StatementTimeout = dur(EnvDBStatementTimeout)
	s.DB.IdleInTransactionTimeout = dur(EnvDBIdleInTxTimeout)
	return s
}
