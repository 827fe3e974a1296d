package recipients

import (
	"encoding/json"
	"testing"

	"github.com/sharelog/sharelog/internal/ledger"
	"github.com/sharelog/sharelog/internal/sharedref"
)

const (
	exampleFile = "../../deploy/recipients.example.yaml"
	forcesFile  = "../../../shared/reference/uk-police-forces/forces.json"
)

func loadExample(t *testing.T) map[string]ledger.Recipient {
	t.Helper()
	rs, err := Load(exampleFile)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	// 44 forces from forces.json and 19 others.
	if got, want := len(rs), 63; got != want {
		t.Errorf("recipients: got %d, want %d", got, want)
	}
	byID := make(map[string]ledger.Recipient, len(rs))
	for _, r := range rs {
		byID[r.ID] = r
	}
	return byID
}

func TestExampleFileHasEveryForce(t *testing.T) {
	t.Parallel()
	b := sharedref.Read(t, forcesFile)
	var forces []struct{ ID, Name string }
	if err := json.Unmarshal(b, &forces); err != nil {
		t.Fatalf("decode %s: %v", forcesFile, err)
	}
	if len(forces) != 44 {
		t.Errorf("%s: got %d forces, want 44", forcesFile, len(forces))
	}
	byID := loadExample(t)
	for _, f := range forces {
		r, ok := byID[f.ID]
		if !ok {
			t.Errorf("force %q (%s) is missing", f.ID, f.Name)
			continue
		}
		if r.Name != f.Name {
			t.Errorf("force %q name: got %q, want %q", f.ID, r.Name, f.Name)
		}
		if r.Role != ledger.RoleCompetentAuthority || r.Regime != ledger.RegimeDPAPart3 || r.Country != "GB" || r.Channel.Type != "nats" {
			t.Errorf("force %q: got role %q regime %q country %q channel %q, want competent-authority dpa-part3 GB nats",
				f.ID, r.Role, r.Regime, r.Country, r.Channel.Type)
		}
	}
}

func TestExampleFileNamedRecipients(t *testing.T) {
	t.Parallel()
	byID := loadExample(t)
	tests := []struct {
		id, name, role, country, regime, channel string
	}{
		{"northern-ireland", "Police Service of Northern Ireland", "competent-authority", "GB", "dpa-part3", "nats"},
		{"devon-and-cornwall", "Devon & Cornwall Police", "competent-authority", "GB", "dpa-part3", "nats"},
		{"police-scotland", "Police Scotland", "competent-authority", "GB", "dpa-part3", "nats"},
		{"btp", "British Transport Police", "competent-authority", "GB", "dpa-part3", "nats"},
		{"ministry-of-defence-police", "Ministry of Defence Police", "competent-authority", "GB", "dpa-part3", "nats"},
		{"royal-navy-police", "Royal Navy Police", "competent-authority", "GB", "dpa-part3", "nats"},
		{"royal-military-police", "Royal Military Police", "competent-authority", "GB", "dpa-part3", "nats"},
		{"raf-police", "RAF Police", "competent-authority", "GB", "dpa-part3", "nats"},
		{"states-of-jersey", "States of Jersey Police", "competent-authority", "JE", "dpa-part3", "nats"},
		{"guernsey", "Guernsey Police", "competent-authority", "GG", "dpa-part3", "nats"},
		{"acro", "ACRO Criminal Records Office", "competent-authority", "GB", "dpa-part3", "nats"},
		{"disclosure-scotland", "Disclosure Scotland", "controller", "GB", "uk-gdpr", "manual"},
		{"accessni", "AccessNI", "controller", "GB", "uk-gdpr", "manual"},
		{"garda", "An Garda Síochána", "competent-authority", "IE", "dpa-part3", "manual"},
		{"uk-central-authority", "UK Central Authority for the Exchange of Criminal Records", "competent-authority", "GB", "dpa-part3", "manual"},
		{"ceop", "CEOP (Child Exploitation and Online Protection), National Crime Agency", "competent-authority", "GB", "dpa-part3", "nats"},
		{"independent-monitor", "Independent Monitor", "controller", "GB", "uk-gdpr", "manual"},
		{"independent-reviewer", "Independent Reviewer", "controller", "GB", "uk-gdpr", "manual"},
		{"cgi", "CGI IT UK Limited", "processor", "GB", "uk-gdpr", "manual"},
		{"hgs", "Hinduja Global Solutions UK Limited (HGS)", "processor", "GB", "uk-gdpr", "manual"},
		{"dxc-technology", "DXC Technology (cloud storage)", "processor", "GB", "uk-gdpr", "webhook"},
	}
	for _, tt := range tests {
		r, ok := byID[tt.id]
		if !ok {
			t.Errorf("recipient %q is missing", tt.id)
			continue
		}
		got := []string{r.Name, r.Role, r.Country, r.Regime, r.Channel.Type}
		want := []string{tt.name, tt.role, tt.country, tt.regime, tt.channel}
		for i := range got {
			if got[i] != want[i] {
				t.Errorf("recipient %q: got (name, role, country, regime, channel) %q, want %q", tt.id, got, want)
				break
			}
		}
	}
	if got, want := byID["dxc-technology"].Channel.URL, "https://sharelog-notices.dxc.example.com/v1/notices"; got != want {
		t.Errorf("dxc-technology webhook url: got %q, want %q", got, want)
	}
	for id, r := range byID {
		if r.InquiryAuthority {
			t.Errorf("recipient %q: inquiryAuthority true, want false for every example recipient", id)
		}
		if r.SLADays == 0 {
			t.Errorf("recipient %q: slaDays unset", id)
		}
	}
}
