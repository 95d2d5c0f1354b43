package catalog

import "testing"

// The catalog docker-compose.yml mounts names real provisioning for every product; an unknown product names none.
func TestProductionCatalogHasNoBuiltinProvisioning(t *testing.T) {
	c, _, err := Open("../../deploy/catalog.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range c.Products() {
		if p.Provisioning != "webhook" {
			t.Errorf("deploy/catalog.json: product %s is provisioned %q", p.ProductID, p.Provisioning)
		}
	}
	if p := Default("X"); p.Provisioning != "" {
		t.Errorf("an unknown product is provisioned %q", p.Provisioning)
	}
}
