package console

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/consentry/consentry/capture"
	"github.com/consentry/consentry/qr"
	"github.com/consentry/consentry/store"
)

// A batch ZIP of many codes takes a while to render. With JavaScript the
// console creates the links at once, renders the ZIP into a temporary file
// in the background and shows its progress; the finished file is fetched
// once. Without JavaScript the form downloads the ZIP in one request.

const (
	batchJobTTL      = 15 * time.Minute // an unfetched ZIP is removed after this
	maxRunningJobs   = 4                // ZIPs being rendered at once, all users
	batchJobStateRun = "running"
	batchJobStateOK  = "ready"
	batchJobStateBad = "failed"
)

// batchJob is one ZIP being rendered for one person.
type batchJob struct {
	owner   string // the session user's email: only they may see or fetch it
	total   int
	done    atomic.Int64
	state   atomic.Value // string
	path    string
	created time.Time
}

type batchJobs struct {
	mu   sync.Mutex
	jobs map[string]*batchJob
}

// add registers a job, dropping expired ones; false when too many run.
func (b *batchJobs) add(id string, j *batchJob, now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.jobs == nil {
		b.jobs = map[string]*batchJob{}
	}
	running := 0
	for k, old := range b.jobs {
		if now.Sub(old.created) > batchJobTTL && old.state.Load() != batchJobStateRun {
			os.Remove(old.path)
			delete(b.jobs, k)
			continue
		}
		if old.state.Load() == batchJobStateRun {
			running++
		}
	}
	if running >= maxRunningJobs {
		return false
	}
	b.jobs[id] = j
	return true
}

func (b *batchJobs) get(id, owner string) (*batchJob, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	j, ok := b.jobs[id]
	if !ok || j.owner != owner {
		return nil, false
	}
	return j, true
}

func (b *batchJobs) remove(id string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if j, ok := b.jobs[id]; ok {
		os.Remove(j.path)
		delete(b.jobs, id)
	}
}

// startBatchJob creates the previewed CSV's links now (a problem is
// answered at once, as the no-JS form does) and renders their ZIP in the
// background. It answers {"id","total"}.
func (h *Handler) startBatchJob(c *fiber.Ctx) error {
	rows, err := capture.ReadLinkRows(strings.NewReader(formValue(c, "csv")))
	if err != nil {
		if _, ok := problemsOf(err); !ok {
			err = &capture.Error{Code: capture.CodeInvalidRequest, Message: err.Error(),
				Fields: []capture.FieldError{{Field: "file", Reason: err.Error()}}}
		}
		return err
	}
	opts := batchOptions(c)
	id, err := randomToken(16)
	if err != nil {
		return err
	}
	f, err := os.CreateTemp("", "consentry-batch-*.zip")
	if err != nil {
		return err
	}
	j := &batchJob{owner: userOf(c).user.Email, path: f.Name(), created: h.now()}
	j.state.Store(batchJobStateRun)
	if !h.batchJobs.add(id, j, h.now()) {
		f.Close()
		os.Remove(f.Name())
		return &capture.Error{Code: capture.CodeRateLimited, Message: "too many batches are being generated; try again in a minute"}
	}
	links, err := h.s.CreateLinkBatch(rows, opts)
	if err != nil {
		f.Close()
		h.batchJobs.remove(id)
		return err
	}
	j.total = len(links)
	h.audit(c, "", "links.batch", fmt.Sprintf("%s … %s", links[0].ID, links[len(links)-1].ID), fmt.Sprintf("%d links, %s %s", len(links), opts.Format, opts.Preset))
	go h.renderBatchJob(j, f, links, opts)
	return c.Status(fiber.StatusAccepted).JSON(fiber.Map{"id": id, "total": j.total})
}

func (h *Handler) renderBatchJob(j *batchJob, f *os.File, links []store.Link, opts qr.Options) {
	err := h.s.WriteLinkBatchZip(f, links, opts, func(done int) { j.done.Store(int64(done)) })
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		h.s.Log().Error("rendering a batch ZIP", "err", err)
		j.state.Store(batchJobStateBad)
		return
	}
	j.state.Store(batchJobStateOK)
}

// batchJobStatus answers a job's progress: {"state","done","total"}.
func (h *Handler) batchJobStatus(c *fiber.Ctx) error {
	j, ok := h.batchJobs.get(strings.Clone(c.Params("id")), userOf(c).user.Email)
	if !ok {
		return &capture.Error{Code: capture.CodeNotFound, Message: "no such batch"}
	}
	return c.JSON(fiber.Map{"state": j.state.Load(), "done": j.done.Load(), "total": j.total})
}

// batchJobZIP sends a finished ZIP once and removes it.
func (h *Handler) batchJobZIP(c *fiber.Ctx) error {
	id := strings.Clone(c.Params("id"))
	j, ok := h.batchJobs.get(id, userOf(c).user.Email)
	if !ok || j.state.Load() != batchJobStateOK {
		return h.fail(c, fiber.StatusNotFound, "not_found")
	}
	f, err := os.Open(j.path)
	if err != nil {
		return err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	h.batchJobs.remove(id) // unlinked now; the open file is read to its end and closed by the response
	c.Set(fiber.HeaderContentType, "application/zip")
	c.Set(fiber.HeaderContentDisposition, `attachment; filename="consentry-codes.zip"`)
	return c.SendStream(f, int(fi.Size()))
}
