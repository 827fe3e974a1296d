// Package vocab loads the vocabularies that sharelog event data refers to by
// key: data categories (fideslang's, marked where they are special-category or
// criminal-offence data), purposes and lawful bases. The vocabularies are data
// files under schemas/vocab, embedded in the binary; code never lists keys.
//
// Category and purpose keys are dotted and hierarchical: a key covers itself
// and every key below it (see Covers).
package vocab
