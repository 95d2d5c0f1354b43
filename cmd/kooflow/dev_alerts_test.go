package main

import (
	"bytes"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kooflow/kooflow/internal/alerts"
	"github.com/kooflow/kooflow/internal/config"
	"github.com/kooflow/kooflow/internal/store"
)

// TestAlertSinkPrintsPushedAlerts: --alerts-log points the worker at a loopback webhook that prints each alert
// body the pusher sends (json format); a URL the developer set is left alone.
func TestAlertSinkPrintsPushedAlerts(t *testing.T) {
	var out bytes.Buffer
	var mu sync.Mutex
	env := map[string]string{}
	stop, err := startAlertSink(env, &out, &mu)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = stop() }()
	if env[config.EnvAlertWebhookFormat] != "json" || !strings.HasPrefix(env[config.EnvAlertWebhookURL], "http://127.0.0.1:") {
		t.Fatalf("env %v", env)
	}
	body, err := alerts.Body(alerts.FormatJSON, store.AlertPush{Alert: store.Alert{InstanceID: "i-1", Key: "purchase-refused",
		Kind: "purchase-refused", RaisedAt: time.Now(), Message: "the seller's provisioning refused order CS1"}})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(env[config.EnvAlertWebhookURL], "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("sink answered %d", resp.StatusCode)
	}
	mu.Lock()
	got := out.String()
	mu.Unlock()
	if !strings.Contains(got, "alert raised") || !strings.Contains(got, "purchase-refused") ||
		!strings.Contains(got, "instance i-1: the seller's provisioning refused order CS1") {
		t.Fatalf("printed %q", got)
	}
	set := map[string]string{config.EnvAlertWebhookURL: "https://oapi.dingtalk.com/robot/send?access_token=x"}
	if _, err := startAlertSink(set, &out, &mu); err != nil || set[config.EnvAlertWebhookURL] != "https://oapi.dingtalk.com/robot/send?access_token=x" {
		t.Fatalf("a configured URL was replaced: %v %v", set, err)
	}
}
