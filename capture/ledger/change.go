package ledger

// Change describes one consent change to append to the ledger (what
// capture's Service.Record writes).
type Change struct {
	Type          string // TypeOptIn, TypeOptOut or TypeConfirm
	Pending       bool   // opt-in waiting for confirmation (double opt-in)
	Phone         string // E.164; empty for a person known only by UserID
	Topics        []string
	Source        string
	Campaign      string
	LinkID        string
	NoticeText    string
	NoticeVersion string
	NoticeLocale  string
	Reason        string
	Evidence      Evidence
	// MessageID, when set, makes the write idempotent: a second Change with
	// the same id appends nothing and reports Duplicate.
	MessageID string
	// RestoreHeld makes an opt-in cover the topics held before the last
	// global opt-out (opt-in keywords); Topics is ignored.
	RestoreHeld bool
	// ConfirmPending makes an opt-in also confirm every pending topic.
	ConfirmPending bool
	// RestorePrior narrows an opt-in to those of Topics the contact has
	// been opted in to before (WhatsApp's "resume"); with none, nothing is
	// recorded and Skipped is set.
	RestorePrior bool
	// UserID is the WhatsApp BSUID the change came with. With Phone the two
	// are linked; alone it names the contact it is tied to (capture/identity.go).
	UserID string
	// BusinessNumber is the business's WhatsApp number (E.164) the change
	// came through.
	BusinessNumber string
}
