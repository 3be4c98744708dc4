package store

import (
	"errors"
	"io"
	"time"
)

// Backend is everything the consent domain asks of a database. The domain
// (capture, widgets) holds a Backend and never a bbolt or pgx type; this
// package's Store keeps it in one bbolt file, store/postgres in a
// PostgreSQL database shared by several processes.
//
// Every implementation keeps the same promises: a Write returns only after
// its transaction is durable; the event chain has one head however many
// processes append; a read started after a Write returned sees it.
type Backend interface {
	// Write runs fn in a read-write transaction, possibly folded with other
	// concurrent writes into one commit, and returns once it is durable.
	Write(fn func(WriteTx) error) error
	// WriteFor is Write for a function that reads the contact records of
	// subjects (WriteTx.Contact, Suppression): a backend may fetch them
	// with the rest of its group in one go, before fn runs. fn sees
	// exactly what it would under Write, and may read other subjects too.
	WriteFor(subjects [][]byte, fn func(WriteTx) error) error
	// WriteAlone is Write for a large write (an import's batch): it is
	// committed in a transaction of its own, so small writes queued behind
	// it are not folded into it and held up by it.
	WriteAlone(fn func(WriteTx) error) error
	// Pending is how many writes wait for the commit under way: a long
	// write may end its transaction early to let them in.
	Pending() int
	Close() error
	IsClosed() bool

	// The ledger.
	Head() (Head, error)
	Events(after uint64, limit int) ([]EventRecord, error)
	EventsOf(subject []byte) ([]EventRecord, error)
	NewEventReader() EventStream
	Notice(sum []byte) (string, error)
	MarkedMessageSeq(id string) (uint64, bool, error)

	// Contacts, identities and suppression.
	ContactState(subject []byte) (state, suppression []byte, err error)
	ContactStates(subjects [][]byte, fn func(i int, state, suppression []byte)) error
	ContactKeys(subjects [][]byte) (map[string][]byte, error)
	ResolveIdentities(ids [][]byte) ([][]byte, error)
	MergedInto(subject []byte) ([][]byte, error)
	IdentityState(id []byte) (state, suppression []byte, err error)

	// Keys, secrets and settings.
	APIKeys() ([]APIKey, error)
	PutAPIKey(k APIKey) error
	DeleteAPIKey(id string) error
	Secret(name string) ([]byte, error)
	EnsureSecret(name string, generate func() ([]byte, error)) ([]byte, error)
	PutSecret(name string, v []byte) error
	Setting(name string) ([]byte, error)
	PutSetting(name string, v []byte) error
	// UpdateSecret and UpdateSetting replace a value with what fn makes of
	// the current one (nil when absent) atomically, whichever process
	// updates it at the same time; nothing is written when fn fails. They
	// return the value stored.
	UpdateSecret(name string, fn func(old []byte) ([]byte, error)) ([]byte, error)
	UpdateSetting(name string, fn func(old []byte) ([]byte, error)) ([]byte, error)

	// Links and their scans.
	Link(id string) (Link, error)
	Links(f LinkFilter) ([]Link, error)
	ScanMark() (uint64, error)
	DayScans(kind byte, value string, from, to time.Time) ([]uint64, error)
	ScanDayTotals(kind byte, from, to time.Time) (map[string]uint64, error)
	ScansBeforeDays(kind byte) (map[string]uint64, time.Time, error)
	// ClaimScan tells whether addr (a keyed hash of a client address)
	// counts a scan of the link now: the first time, and again once window
	// has passed since it last counted, agreed by every process sharing
	// the database. ErrUnsupported where one process holds the database
	// (it remembers recent scans itself).
	ClaimScan(linkID string, addr []byte, window time.Duration) (bool, error)
	// ForgetScan undoes a claim whose scan was not counted.
	ForgetScan(linkID string, addr []byte) error

	// Confirmed opt-ins per day, counted as they are written.
	DayOptIns(kind byte, value string, from, to time.Time) ([]uint64, error)
	OptInDayTotals(kind byte, from, to time.Time) (map[string]uint64, error)
	DayCountsBackfill() (b DayCountsBackfill, ok bool, err error)

	// Widgets.
	CreateWidget(w Widget) error
	Widget(id string) (Widget, error)
	Widgets() ([]Widget, error)
	UpdateWidget(id string, fn func(*Widget) error) (Widget, error)
	DeleteWidget(id string) error

	// Idempotent answers.
	IdempotentAnswer(key []byte) (a IdempotentAnswer, ok bool, err error)
	PutIdempotentAnswer(key []byte, a IdempotentAnswer) error
	// ClaimIdempotentKey keeps claim (an answer with Status 0: in
	// progress) under key, atomically for every process, unless an answer
	// or claim is there that replace does not let go; then claimed is
	// false and prev is that one. PutIdempotentAnswer ends the claim with
	// the answer; ReleaseIdempotentClaim gives it up.
	ClaimIdempotentKey(key []byte, claim IdempotentAnswer, replace func(prev IdempotentAnswer) bool) (prev IdempotentAnswer, claimed bool, err error)
	ReleaseIdempotentClaim(key []byte, claim IdempotentAnswer) error
	DeleteIdempotentAnswersBefore(cutoff time.Time) (int, error)

	// Outbound webhooks.
	PutSubscription(sub Subscription) error
	Subscription(id string) (Subscription, error)
	Subscriptions() ([]Subscription, error)
	UpdateSubscription(id string, fn func(*Subscription) error) (Subscription, error)
	DeleteSubscription(id string) error
	PendingDeliveries(subID string, limit int) ([]Delivery, error)
	Deliveries(subID string, before uint64, limit int) ([]Delivery, error)
	UpdateDelivery(subID string, num uint64, fn func(*Delivery) error) (Delivery, error)

	// Console users, sessions and the admin audit log.
	CreateUser(u User) error
	User(email string) (User, error)
	UpdateUser(email string, fn func(*User) error) (User, error)
	Users() ([]User, error)
	PutSession(tokenHash []byte, sess Session) error
	Session(tokenHash []byte) (Session, error)
	DeleteSession(tokenHash []byte) error
	DeleteSessions(drop func(Session) bool) (int, error)
	AppendAudit(e AuditEntry) (AuditEntry, error)
	AuditLog(before uint64, limit int) ([]AuditEntry, error)

	// Operations. Backup writes a consistent copy in the backend's own
	// format (ErrUnsupported where the database has its own tools);
	// ScrubFreePages makes erased bytes unreadable in the database's free
	// space and returns how many pages it cleared; SpaceUsage reports the
	// bytes each kind of record takes; WarmDone is closed once what checks
	// read is in memory.
	Backup(w io.Writer) (int64, error)
	ScrubFreePages() (int, error)
	SpaceUsage() (map[string]BucketSpace, error)
	WarmDone() <-chan struct{}
	// Changes reports what another process changed, for caches; nil when
	// no other process can write (bbolt holds its file exclusively).
	Changes() <-chan Change
	// Location names the database for messages (a path, or a URL without
	// its password).
	Location() string
}

// WriteTx is a read-write transaction handed to Backend.Write. Reads made
// through it see the transaction's own writes. Methods that return no
// error report a failed read by failing the commit.
type WriteTx interface {
	Head() Head
	AppendEvent(build EventBuilder) (EventRecord, error)
	// AppendPreparedEvent is AppendEvent for an event whose body was
	// encoded beforehand (PrepareEventBody), outside the transaction; the
	// event stored is the one AppendEvent would store.
	AppendPreparedEvent(build EventBuilder, body *PreparedBody) (EventRecord, error)
	Event(seq uint64) (EventRecord, error)
	ResealEvent(seq uint64, sealed []byte) error
	PutNotice(sum []byte, text string) error
	// DeleteNotice removes a notice text; events naming its hash still
	// verify (their hash covers the hash, not the text).
	DeleteNotice(sum []byte) error
	MarkMessage(id string, seq uint64) (bool, error)

	Contact(subject []byte) (key, state []byte)
	PutContact(subject, key, state []byte) error
	DeleteContact(subject []byte) error
	ContactEventSeqs(subject []byte) []uint64
	Suppression(subject []byte) []byte
	// ReadContacts reads the records of many subjects into the
	// transaction at once, ahead of the calls that use them (an import's
	// batch): one query, or lookups spread over cores.
	ReadContacts(subjects [][]byte)
	PutSuppression(subject, entry []byte) error

	Identity(id []byte) (subject []byte, kind byte)
	LinkIdentity(id, subject []byte, kind byte) error
	UnlinkIdentity(id []byte) error
	IdentitiesOf(subject []byte) [][]byte
	MergedInto(subject []byte) [][]byte
	AddMerged(subject, other []byte) error
	RemoveMerged(subject, other []byte) error

	NextLinkSerial() (uint64, error)
	PutLink(l Link) error
	Link(id string) (Link, error)
	LinkIDByRef(ref string) (string, bool)
	PutLinkRef(ref, id string) error
	AddScan(id string) error
	AddScans(id string, n uint64) error
	AddScanBelow(id string, max uint64) (bool, error)
	AddDayScans(day time.Time, l Link, n uint64) error
	SetScanMark(mark uint64) error
	KeepScansBeforeDays(today time.Time) error

	AddDayOptIns(day time.Time, source, campaign, linkID string, n uint64) error
	DayCountsBackfill() (b DayCountsBackfill, ok bool)
	SetDayCountsBackfill(b DayCountsBackfill) error

	HasImportRef(ref []byte) bool
	// HasImportRefs is HasImportRef for many refs at once.
	HasImportRefs(refs [][]byte) []bool
	PutImportRef(ref []byte, seq uint64) error
	// SubscriptionsVersion changes whenever a subscription is created,
	// changed or deleted; Subscriptions are those of that version. A cache
	// of the list is exact for a transaction that reads the same version.
	SubscriptionsVersion() uint64
	Subscriptions() ([]Subscription, error)
	EnqueueDelivery(d *Delivery) error
}

// EventStream reads the whole ledger in order for an export, in a way
// that does not push what checks need out of memory.
type EventStream interface {
	Next(after uint64, limit int) ([]EventRecord, error)
	Close() error
}

// Change is a kind of record changed by another process: ChangeSettings,
// ChangeAPIKeys, ChangeLinks, ChangeWidgets or ChangeSubscriptions.
type Change string

const (
	ChangeSettings      Change = "settings"
	ChangeAPIKeys       Change = "api_keys"
	ChangeLinks         Change = "links"
	ChangeWidgets       Change = "widgets"
	ChangeSubscriptions Change = "subscriptions"
)

// ErrUnsupported is returned by operations a backend leaves to the
// database's own tools (a PostgreSQL backup is pg_dump's job).
var ErrUnsupported = errors.New("store: not supported by this backend")

var (
	_ Backend     = (*Store)(nil)
	_ WriteTx     = (*Tx)(nil)
	_ EventStream = (*EventReader)(nil)
)
