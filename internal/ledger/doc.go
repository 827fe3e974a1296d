// Package ledger is sharelog's domain: the events it records (disclosures,
// recipients, rectification, erasure and restriction requests, notices, acks,
// exemptions and holds), the ledger entry they become, the answers to a DPO's
// questions, the error vocabulary every other package speaks, and every rule
// of the product.
//
// # Rules
//
// Decide (decide.go) is what an event does, given the ledger as it stands:
// it reads the ledger through State (state.go) and returns a Plan of what to
// write, or an *InvalidError naming the rule the event breaks. The rules it
// applies live beside it, one concern a file: which sender may send which
// type (rules_sender.go); which recipients a request reaches through the
// category hierarchy and what each is told (category.go, decide.go); when
// each notice is due (deadline.go), by the DPO's calendar: the end of the
// day in the controller's time zone, rolled past weekends and bank holidays
// given as data (calendar.go); when the person who made a request must be
// answered, with extensions and the clock stopped while the controller
// waits for them (answer.go); what an acknowledgement, an exemption or
// a delivery does to an obligation, and when a notice is due for delivery
// (obligation_rules.go); which holds cover a subject (holds.go), and what a
// hold does to an erasure and its release (decide_holds.go); lifting a
// restriction (decide_lifting.go); when a justification or a discloser
// means nothing (s62.go); when a subject may be forgotten (retention.go);
// which fields are personal (personal.go). Each has a table test naming the
// provision of the law it implements.
//
// MemState (memstate.go) is the ledger's derived state in memory: the fold
// of the entries through Decide. The rules' tests run over it; the same
// scenarios (ledgertest) run against the Badger store; verify replays the
// entries through it.
//
// It imports only the standard library. Storage (internal/store), transport
// (internal/nats, internal/http) and validation (internal/cloudevents) depend on
// it; it depends on none of them.
package ledger
