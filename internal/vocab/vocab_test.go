package vocab_test

import (
	"strings"
	"testing"
	"testing/fstest"

	"go.yaml.in/yaml/v3"

	"github.com/sharelog/sharelog/internal/sharedref"
	"github.com/sharelog/sharelog/internal/vocab"
)

const fideslangCategories = "../../../shared/reference/fideslang/data_categories.yml"
const fideslangUses = "../../../shared/reference/fideslang/data_uses.yml"

func load(t *testing.T) *vocab.Vocabulary {
	t.Helper()
	v, err := vocab.Load()
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return v
}

func TestCategory(t *testing.T) {
	t.Parallel()
	v := load(t)
	tests := []struct {
		key                   string
		ok, special, criminal bool
		parent                string
	}{
		{key: "user", ok: true},
		{key: "user.contact", ok: true, parent: "user"},
		{key: "user.contact.email", ok: true, parent: "user.contact"},
		{key: "user.contact.address.city", ok: true, parent: "user.contact.address"},
		{key: "user.criminal_history", ok: true, criminal: true, parent: "user"},
		{key: "user.criminal_history.convictions", ok: true, criminal: true, parent: "user.criminal_history"},
		{key: "user.health_and_medical", ok: true, special: true, parent: "user"},
		{key: "user.health_and_medical.genetic", ok: true, special: true, parent: "user.health_and_medical"},
		{key: "user.biometric.fingerprint", ok: true, special: true, parent: "user.biometric"},
		{key: "user.demographic.race_ethnicity", ok: true, special: true, parent: "user.demographic"},
		{key: "user.demographic.religious_belief", ok: true, special: true, parent: "user.demographic"},
		{key: "user.demographic.political_opinion", ok: true, special: true, parent: "user.demographic"},
		{key: "user.demographic.sexual_orientation", ok: true, special: true, parent: "user.demographic"},
		{key: "user.demographic.trade_union_membership", ok: true, special: true, parent: "user.demographic"},
		{key: "user.demographic.gender", ok: true, parent: "user.demographic"},
		{key: "user.demographic", ok: true, parent: "user"},
		{key: "user.contact.emial"},
		{key: ""},
		{key: "User.Contact"},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			c, ok := v.Category(tt.key)
			if ok != tt.ok {
				t.Fatalf("Category(%q) ok = %v, want %v", tt.key, ok, tt.ok)
			}
			if !ok {
				return
			}
			if c.Key != tt.key || c.Parent != tt.parent || c.Special != tt.special || c.Criminal != tt.criminal || c.Name == "" {
				t.Errorf("Category(%q) = %+v, want parent %q special %v criminal %v and a name", tt.key, c, tt.parent, tt.special, tt.criminal)
			}
		})
	}
}

func TestSensitive(t *testing.T) {
	t.Parallel()
	v := load(t)
	tests := []struct {
		key               string
		special, criminal bool
	}{
		{"user.health_and_medical.record_id", true, false},
		{"user.criminal_history.cautions", false, true},
		{"user.contact.email", false, false},
		{"user.nope", false, false},
	}
	for _, tt := range tests {
		s, c := v.Sensitive(tt.key)
		if s != tt.special || c != tt.criminal {
			t.Errorf("Sensitive(%q) = %v, %v; want %v, %v", tt.key, s, c, tt.special, tt.criminal)
		}
	}
}

func TestPurposeAndLawfulBasis(t *testing.T) {
	t.Parallel()
	v := load(t)
	purposes := []struct {
		key  string
		want bool
	}{
		{"third_party_sharing.legal_obligation", true},
		{"essential.service", true},
		{"law_enforcement.prevention", true},
		{"law_enforcement.investigation", true},
		{"law_enforcement.prosecution", true},
		{"safeguarding.disclosure_check", true},
		{"safeguarding.barring", true},
		{"safeguarding.child_protection", true},
		{"general_enquiry", true},
		{"law_enforcement.nope", false},
		{"", false},
	}
	for _, tt := range purposes {
		if got := v.Purpose(tt.key); got != tt.want {
			t.Errorf("Purpose(%q) = %v, want %v", tt.key, got, tt.want)
		}
	}
	bases := []struct {
		key  string
		want bool
	}{
		{"art6-1-a", true},
		{"art6-1-f", true},
		{"art6-1-g", false},
		{"art9-2-a", true},
		{"art9-2-j", true},
		{"art9-2-k", false},
		{"art10", true},
		{"dpa-s35-2-a", true},
		{"dpa-s35-2-b", true},
		{"dpa-s35-5", true},
		{"dpa-sch1-p1", true},
		{"dpa-sch1-p18", true},
		{"dpa-sch1-p37", true},
		{"dpa-sch1-p38", false},
		{"ART6-1-A", false},
	}
	for _, tt := range bases {
		if got := v.LawfulBasis(tt.key); got != tt.want {
			t.Errorf("LawfulBasis(%q) = %v, want %v", tt.key, got, tt.want)
		}
	}
	for i := 1; i <= 37; i++ {
		key := "dpa-sch1-p" + itoa(i)
		if i == 5 {
			continue // a requirement, not a condition
		}
		if !v.LawfulBasis(key) {
			t.Errorf("LawfulBasis(%q) = false, want true", key)
		}
	}
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}

// fidesKeys reads the fides_key of every entry of a fideslang file.
func fidesKeys(t *testing.T, path, list string) []string {
	t.Helper()
	b := sharedref.Read(t, path)
	var doc map[string][]struct {
		FidesKey string `yaml:"fides_key"`
		Name     string `yaml:"name"`
		Parent   string `yaml:"parent_key"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, e := range doc[list] {
		keys = append(keys, e.FidesKey)
	}
	if len(keys) == 0 {
		t.Fatalf("%s: no %s entries", path, list)
	}
	return keys
}

// TestFideslangCategoriesPresent keeps our derived categories.yaml from
// drifting behind the fideslang reference it was derived from.
func TestFideslangCategoriesPresent(t *testing.T) {
	t.Parallel()
	v := load(t)
	for _, key := range fidesKeys(t, fideslangCategories, "data_category") {
		if _, ok := v.Category(key); !ok {
			t.Errorf("fideslang category %q is missing from categories.yaml", key)
		}
	}
}

// TestFideslangUsesPresent does the same for purposes.yaml.
func TestFideslangUsesPresent(t *testing.T) {
	t.Parallel()
	v := load(t)
	for _, key := range fidesKeys(t, fideslangUses, "data_use") {
		if !v.Purpose(key) {
			t.Errorf("fideslang data use %q is missing from purposes.yaml", key)
		}
	}
}

func TestLoadFSRejects(t *testing.T) {
	t.Parallel()
	good := map[string]string{
		vocab.CategoriesFile:  "categories:\n  - {key: user, name: User}\n  - {key: user.contact, name: Contact, parent: user}\n",
		vocab.PurposesFile:    "purposes:\n  - {key: essential, name: Essential}\n",
		vocab.LawfulBasesFile: "lawfulBases:\n  - {key: art6-1-a, description: Consent.}\n",
	}
	tests := []struct {
		name, file, content, wantErr string
	}{
		{"ok", "", "", ""},
		{"missing parent", vocab.CategoriesFile, "categories:\n  - {key: user.contact, name: Contact, parent: user}\n", `parent "user" is not defined`},
		{"wrong parent", vocab.CategoriesFile, "categories:\n  - {key: user, name: User}\n  - {key: user.contact, name: Contact}\n", `parent "", want "user"`},
		{"duplicate", vocab.CategoriesFile, "categories:\n  - {key: user, name: User}\n  - {key: user, name: User}\n", "defined twice"},
		{"bad key", vocab.PurposesFile, "purposes:\n  - {key: Essential, name: E}\n", "dotted lowercase"},
		{"purpose parent", vocab.PurposesFile, "purposes:\n  - {key: law.x, name: X}\n", `parent "law" is not defined`},
		{"bad basis", vocab.LawfulBasesFile, "lawfulBases:\n  - {key: art6_1_a, description: X}\n", "lowercase slug"},
		{"empty", vocab.LawfulBasesFile, "lawfulBases: []\n", "empty"},
		{"not yaml", vocab.PurposesFile, "purposes: [", vocab.PurposesFile},
		{"absent", vocab.PurposesFile, "", "file does not exist"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fsys := fstest.MapFS{}
			for name, content := range good {
				fsys[name] = &fstest.MapFile{Data: []byte(content)}
			}
			if tt.file != "" {
				if tt.name == "absent" {
					delete(fsys, tt.file)
				} else {
					fsys[tt.file] = &fstest.MapFile{Data: []byte(tt.content)}
				}
			}
			_, err := vocab.LoadFS(fsys)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("LoadFS: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("LoadFS error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}
