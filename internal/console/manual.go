package console

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"

	"github.com/sharelog/sharelog/internal/ledger"
	"github.com/sharelog/sharelog/internal/notify"
)

// manualReason is the reason recorded in the consultation log when the
// manual queue, which holds identifiers a person must send, is read.
const manualReason = "sending manual notices (console)"

func (c *Console) manualQueue(w http.ResponseWriter, r *http.Request, ss *session) ([]notify.ManualNotice, bool) {
	if c.cfg.Notices == nil {
		c.fail(w, r, ss, ledger.Errorf(ledger.EUNAVAILABLE, "notice delivery is not running"))
		return nil, false
	}
	if err := c.consult(r.Context(), ss, "manualQueue", manualReason, nil, "console: manual queue"); err != nil {
		c.fail(w, r, ss, err)
		return nil, false
	}
	q, err := c.cfg.Notices.ManualQueue(r.Context())
	if err != nil {
		c.fail(w, r, ss, err)
		return nil, false
	}
	return q, true
}

func (c *Console) manual(w http.ResponseWriter, r *http.Request, ss *session) {
	q, ok := c.manualQueue(w, r, ss)
	if !ok {
		return
	}
	c.render(w, r, ss, http.StatusOK, "manual", "Manual queue", struct {
		Notices []notify.ManualNotice
		MaySend bool
	}{q, c.may(ss, secMarkSent)})
}

// manualNotice downloads one manual notice as a text file to send. The
// notice id is in the URL; the person's identifier only in the body.
func (c *Console) manualNotice(w http.ResponseWriter, r *http.Request, ss *session) {
	q, ok := c.manualQueue(w, r, ss)
	if !ok {
		return
	}
	id := r.PathValue("notice")
	for _, n := range q {
		if n.Notice != id {
			continue
		}
		var b bytes.Buffer
		fmt.Fprintf(&b, "To: %s (%s)\r\n", n.Name, n.Recipient)
		if n.Contact != "" {
			fmt.Fprintf(&b, "Contact: %s\r\n", n.Contact)
		}
		fmt.Fprintf(&b, "Notice: %s\r\nRequest: %s\r\nAction: %s\r\nDue: %s\r\n\r\n", n.Notice, n.Request, n.Action, n.Due.UTC().Format("2 January 2006"))
		fmt.Fprintf(&b, "We previously shared with you personal data about the person identified as %s:%s.\r\n", n.Subject.Scheme, n.Subject.ID)
		fmt.Fprintf(&b, "That person's %s has been decided for these categories of data: %s.\r\n", n.Action, strings.Join(n.Categories, ", "))
		fmt.Fprintf(&b, "It concerns our disclosures %s.\r\n", strings.Join(n.Disclosures, ", "))
		for _, ch := range n.Changes {
			fmt.Fprintf(&b, "Change: %s %s = %v\r\n", ch.Category, ch.Field, ch.Value)
		}
		fmt.Fprintf(&b, "\r\nPlease apply it to the data you hold and tell us when you have, quoting notice %s.\r\n", n.Notice)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", "notice-"+safeName(n.Notice)+".txt"))
		w.Write(b.Bytes())
		return
	}
	c.errorPage(w, r, ss, http.StatusNotFound, "That notice is not in the manual queue: it may have been sent already.")
}

// safeName keeps letters, digits, '-' and '_' of s for a file name.
func safeName(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, s)
}

// markSent records that the signed-in clerk sent a manual notice, through
// the same call as POST /v1/notices/{notice}/sent.
func (c *Console) markSent(w http.ResponseWriter, r *http.Request, ss *session) {
	if c.cfg.Notices == nil {
		c.fail(w, r, ss, ledger.Errorf(ledger.EUNAVAILABLE, "notice delivery is not running"))
		return
	}
	notice := r.PathValue("notice")
	if _, err := c.cfg.Notices.MarkSent(r.Context(), notice, ss.principal.Name); err != nil {
		c.fail(w, r, ss, err)
		return
	}
	c.sessions.setFlash(ss, fmt.Sprintf("Notice %s is marked as sent by %s.", notice, ss.principal.Name))
	http.Redirect(w, r, "/ui/manual", http.StatusSeeOther)
}
