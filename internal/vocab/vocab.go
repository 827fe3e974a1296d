package vocab

import (
	"fmt"
	"io/fs"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/sharelog/sharelog/schemas"
)

// The vocabulary files, relative to the root of the file system they are
// loaded from.
const (
	CategoriesFile  = "vocab/categories.yaml"
	PurposesFile    = "vocab/purposes.yaml"
	LawfulBasesFile = "vocab/lawful-bases.yaml"
)

var (
	dottedKey = regexp.MustCompile(`^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$`)
	basisKey  = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)
)

// Category is one data category. Special marks UK GDPR Art. 9
// special-category data, Criminal Art. 10 criminal-offence data.
type Category struct {
	Key      string `yaml:"key" json:"key"`
	Name     string `yaml:"name" json:"name"`
	Parent   string `yaml:"parent,omitempty" json:"parent,omitempty"`
	Special  bool   `yaml:"special,omitempty" json:"special,omitempty"`
	Criminal bool   `yaml:"criminal,omitempty" json:"criminal,omitempty"`
	// Origin is "sharelog" for keys sharelog adds to fideslang's.
	Origin string `yaml:"origin,omitempty" json:"origin,omitempty"`
}

// Purpose is one purpose of a disclosure.
type Purpose struct {
	Key    string `yaml:"key" json:"key"`
	Name   string `yaml:"name" json:"name"`
	Origin string `yaml:"origin,omitempty" json:"origin,omitempty"`
}

// LawfulBasis is one lawful basis or condition for processing.
type LawfulBasis struct {
	Key         string `yaml:"key" json:"key"`
	Description string `yaml:"description" json:"description"`
}

// Vocabulary is a loaded, checked set of vocabularies. It is read-only and
// safe for concurrent use.
type Vocabulary struct {
	categories  map[string]Category
	purposes    map[string]Purpose
	lawfulBases map[string]LawfulBasis
	catList     []Category
	purposeList []Purpose
	basisList   []LawfulBasis
}

// Load loads the vocabularies embedded in the binary (schemas.FS).
func Load() (*Vocabulary, error) { return LoadFS(schemas.FS) }

// LoadFS loads the vocabularies from fsys, which holds CategoriesFile,
// PurposesFile and LawfulBasesFile. It returns an error naming the file and
// key if a file is unreadable, a key is malformed or repeated, or a
// category's parent (or a purpose's dotted parent) is not itself defined.
func LoadFS(fsys fs.FS) (*Vocabulary, error) {
	var cats struct {
		Categories []Category `yaml:"categories"`
	}
	var purps struct {
		Purposes []Purpose `yaml:"purposes"`
	}
	var bases struct {
		LawfulBases []LawfulBasis `yaml:"lawfulBases"`
	}
	for _, f := range []struct {
		name string
		v    any
	}{{CategoriesFile, &cats}, {PurposesFile, &purps}, {LawfulBasesFile, &bases}} {
		b, err := fs.ReadFile(fsys, f.name)
		if err != nil {
			return nil, fmt.Errorf("vocab: %w", err)
		}
		if err := yaml.Unmarshal(b, f.v); err != nil {
			return nil, fmt.Errorf("vocab: %s: %w", f.name, err)
		}
	}

	v := &Vocabulary{
		categories:  make(map[string]Category, len(cats.Categories)),
		purposes:    make(map[string]Purpose, len(purps.Purposes)),
		lawfulBases: make(map[string]LawfulBasis, len(bases.LawfulBases)),
	}
	for _, c := range cats.Categories {
		if !dottedKey.MatchString(c.Key) || c.Name == "" {
			return nil, fmt.Errorf("vocab: %s: category %q: key must be dotted lowercase words and name non-empty", CategoriesFile, c.Key)
		}
		if _, dup := v.categories[c.Key]; dup {
			return nil, fmt.Errorf("vocab: %s: category %q defined twice", CategoriesFile, c.Key)
		}
		if want := parentOf(c.Key); c.Parent != want {
			return nil, fmt.Errorf("vocab: %s: category %q: parent %q, want %q", CategoriesFile, c.Key, c.Parent, want)
		}
		v.categories[c.Key] = c
	}
	for _, c := range cats.Categories {
		if c.Parent != "" {
			if _, ok := v.categories[c.Parent]; !ok {
				return nil, fmt.Errorf("vocab: %s: category %q: parent %q is not defined", CategoriesFile, c.Key, c.Parent)
			}
		}
	}
	for _, p := range purps.Purposes {
		if !dottedKey.MatchString(p.Key) || p.Name == "" {
			return nil, fmt.Errorf("vocab: %s: purpose %q: key must be dotted lowercase words and name non-empty", PurposesFile, p.Key)
		}
		if _, dup := v.purposes[p.Key]; dup {
			return nil, fmt.Errorf("vocab: %s: purpose %q defined twice", PurposesFile, p.Key)
		}
		v.purposes[p.Key] = p
	}
	for _, p := range purps.Purposes {
		if parent := parentOf(p.Key); parent != "" {
			if _, ok := v.purposes[parent]; !ok {
				return nil, fmt.Errorf("vocab: %s: purpose %q: parent %q is not defined", PurposesFile, p.Key, parent)
			}
		}
	}
	for _, b := range bases.LawfulBases {
		if !basisKey.MatchString(b.Key) || b.Description == "" {
			return nil, fmt.Errorf("vocab: %s: lawful basis %q: key must be a lowercase slug and description non-empty", LawfulBasesFile, b.Key)
		}
		if _, dup := v.lawfulBases[b.Key]; dup {
			return nil, fmt.Errorf("vocab: %s: lawful basis %q defined twice", LawfulBasesFile, b.Key)
		}
		v.lawfulBases[b.Key] = b
	}
	if len(v.categories) == 0 || len(v.purposes) == 0 || len(v.lawfulBases) == 0 {
		return nil, fmt.Errorf("vocab: a vocabulary is empty")
	}
	v.catList = sortedValues(v.categories, func(c Category) string { return c.Key })
	v.purposeList = sortedValues(v.purposes, func(p Purpose) string { return p.Key })
	v.basisList = sortedValues(v.lawfulBases, func(b LawfulBasis) string { return b.Key })
	return v, nil
}

// Category returns the category with the given key, and whether it exists.
func (v *Vocabulary) Category(key string) (Category, bool) {
	c, ok := v.categories[key]
	return c, ok
}

// Purpose reports whether key is a known purpose.
func (v *Vocabulary) Purpose(key string) bool {
	_, ok := v.purposes[key]
	return ok
}

// LawfulBasis reports whether key is a known lawful basis or condition.
func (v *Vocabulary) LawfulBasis(key string) bool {
	_, ok := v.lawfulBases[key]
	return ok
}

// Categories returns every category, sorted by key. The slice is shared: do
// not modify it.
func (v *Vocabulary) Categories() []Category { return v.catList }

// Purposes returns every purpose, sorted by key. The slice is shared: do not
// modify it.
func (v *Vocabulary) Purposes() []Purpose { return v.purposeList }

// LawfulBases returns every lawful basis, sorted by key. The slice is shared:
// do not modify it.
func (v *Vocabulary) LawfulBases() []LawfulBasis { return v.basisList }

// Sensitive reports whether key, or any category above it, is marked
// special-category or criminal-offence data. It returns false for an unknown
// key.
func (v *Vocabulary) Sensitive(key string) (special, criminal bool) {
	for k := key; k != ""; k = parentOf(k) {
		c, ok := v.categories[k]
		if !ok {
			return false, false
		}
		special = special || c.Special
		criminal = criminal || c.Criminal
	}
	return special, criminal
}

func parentOf(key string) string {
	i := strings.LastIndexByte(key, '.')
	if i < 0 {
		return ""
	}
	return key[:i]
}

func sortedValues[T any](m map[string]T, key func(T) string) []T {
	out := make([]T, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	slices.SortFunc(out, func(a, b T) int { return strings.Compare(key(a), key(b)) })
	return out
}
