package main

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/shopspring/decimal"
	"github.com/spf13/cobra"

	"github.com/kooflow/kooflow/emulator/deliver"
	"github.com/kooflow/kooflow/emulator/kit"
	"github.com/kooflow/kooflow/emulator/market"
	"github.com/kooflow/kooflow/internal/config"
	kitkey "github.com/kooflow/kooflow/internal/kit"
)

// newEmulatorKitCmd is `kooflow emulator kit`: a joint-operation purchase, then the Kit sync scenario against it.
func newEmulatorKitCmd() *cobra.Command {
	var t target
	var kitURL, publicKey, product, sku, tenant, domain string
	var users int
	var keep bool
	cmd := &cobra.Command{
		Use:   "kit",
		Short: "Buy a joint-operation product, then sync its tenant, application, users and organisation (Kit calls) and report",
		Long: `kit places a joint-operation order in the emulator market, sends newInstance, and plays the customer's Kit
sync history against the seller: tenantSync, applicationSync (client secret RSA-encrypted with the seller's
public key), authSync (userList as a JSON string and as an array, modify, cancel), singleOrgSync and allOrgSync,
each added, repeated, modified and deleted twice, a delete for an instance that does not exist, and a forged
x-sign. The seller's public key is --kit-public-key (Base64 X.509, as ` + "`kooflow kit keygen`" + ` prints it), else
the public half of KOOGALLERY_KIT_PRIVATE_KEY. With --keep the tenant, application and users stay, so a unified
login can follow.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, log, err := emulatorSetup()
			if err != nil {
				return err
			}
			if err := t.resolve(cfg); err != nil {
				return err
			}
			places, stop, err := t.places(cfg, log)
			if err != nil {
				return err
			}
			defer stop()
			pub, err := sellerPublicKey(publicKey, cfg)
			if err != nil {
				return err
			}
			if kitURL == "" {
				kitURL = "http://" + cfg.HTTPAddr + config.DefaultKitPath
			}
			ctx := cmd.Context()
			orderID := fmt.Sprintf("CSKIT%s", time.Now().UTC().Format("060102150405.000"))
			orderID = strings.ReplaceAll(orderID, ".", "")
			line := orderID + "-000001"
			price := decimal.RequireFromString("500")
			if err := places.PutOrder(ctx, market.Order{OrderID: orderID, OrderType: market.TypeNew, CreateTime: time.Now().UTC().Truncate(time.Second),
				Lines: []market.Line{{OrderLineID: line, ChargingMode: market.ChargingPeriod, PeriodType: "month", PeriodNumber: 1,
					ExpireTime: time.Now().UTC().AddDate(0, 1, 0).Truncate(time.Second), ProductID: product, SKUCode: sku, LinearValue: 1,
					ListAmount: price, PaidAmount: price}}}); err != nil {
				return fmt.Errorf("place the joint-operation order: %w", err)
			}
			client := deliver.NewClient(t.sellerURL, cfg.AccessKey.Reveal())
			a := client.Send(ctx, deliver.Message{Activity: deliver.NewInstance, Fields: []deliver.Field{
				{Name: "orderId", Value: orderID}, {Name: "orderLineId", Value: line}}}, 0)
			if a.InstanceID == "" {
				return fmt.Errorf("newInstance for %s answered %s %q without an instanceId (%v)", orderID, a.ResultCode, a.ResultMsg, a.Err)
			}
			fmt.Printf("joint-operation order %s: instance %s (newInstance %s)\n", orderID, a.InstanceID, a.ResultCode)
			if tenant == "" {
				tenant = "tenant-" + strings.ToLower(orderID)
			}
			sc := &kit.Scenario{Syncer: &kit.Syncer{BaseURL: kitURL, AccessKey: cfg.AccessKey.Reveal(), SellerKey: pub, Attempts: 40},
				InstanceID: a.InstanceID, OrderID: orderID, Tenant: tenant, DomainName: domain, AppID: "app-" + strings.ToLower(orderID),
				ClientID: "client-" + strings.ToLower(orderID), ClientSecret: "secret-" + strings.ToLower(orderID), Users: users, Keep: keep}
			steps := sc.Run(ctx)
			kit.Print(os.Stdout, steps)
			if !kit.Passed(steps) {
				return errors.New("the Kit scenario failed")
			}
			return nil
		},
	}
	t.flags(cmd)
	f := cmd.Flags()
	f.StringVar(&kitURL, "kit", "", "the seller's Kit base URL; each call goes to <kit>/<call> (default http://$"+config.EnvHTTPAddr+config.DefaultKitPath+")")
	f.StringVar(&publicKey, "kit-public-key", "", "the seller's Kit public key, Base64 X.509 (default: from "+config.EnvKitPrivateKey+")")
	f.StringVar(&product, "product", "OFFI-KOOFLOW-ANALYTICS", "the joint-operation product to buy")
	f.StringVar(&sku, "sku", "analytics-month", "its SKU")
	f.StringVar(&tenant, "tenant", "", "the tenant id (default: one derived from the order)")
	f.StringVar(&domain, "domain", "https://auth.example.invalid", "the tenant's auth-centre domain (tenantSync domainName)")
	f.IntVar(&users, "users", 20, "users to authorise (at most 500)")
	f.BoolVar(&keep, "keep", false, "leave the tenant, application and users in place at the end")
	return cmd
}

// sellerPublicKey reads the key the marketplace encrypts client secrets with: the flag's Base64 X.509, else the
// public half of the configured Kit private key; nil when neither is set (the scenario reports it).
func sellerPublicKey(flag string, cfg config.Config) (*rsa.PublicKey, error) {
	if flag != "" {
		der, err := base64.StdEncoding.DecodeString(strings.TrimSpace(flag))
		if err != nil {
			return nil, fmt.Errorf("--kit-public-key is not Base64: %w", err)
		}
		k, err := x509.ParsePKIXPublicKey(der)
		if err != nil {
			return nil, fmt.Errorf("--kit-public-key is not an X.509 public key: %w", err)
		}
		pub, ok := k.(*rsa.PublicKey)
		if !ok {
			return nil, errors.New("--kit-public-key is not an RSA key")
		}
		return pub, nil
	}
	priv, err := kitkey.LoadKey(cfg.Kit)
	if err != nil || priv == nil {
		return nil, err
	}
	return &priv.PublicKey, nil
}

// dialKit is the Kit syncer of `kooflow emulator dial --kit`: the Kit endpoints of the local kooflow, the
// public half of its Kit key.
func dialKit(on bool, cfg config.Config) (*kit.Syncer, error) {
	if !on {
		return nil, nil
	}
	pub, err := sellerPublicKey("", cfg)
	if err != nil {
		return nil, err
	}
	return &kit.Syncer{BaseURL: "http://" + cfg.HTTPAddr + config.DefaultKitPath, AccessKey: cfg.AccessKey.Reveal(), SellerKey: pub,
		Attempts: 20}, nil
}
