package qr

import (
	"fmt"
	"sync"

	qrcode "github.com/skip2/go-qrcode"
)

// matrix is a QR symbol without quiet zone. It is immutable once built, so
// cached matrices are shared between concurrent renders.
type matrix struct {
	version int
	size    int    // modules per side
	dark    []bool // row-major, size*size
}

func (m *matrix) at(x, y int) bool { return m.dark[y*m.size+x] }

var eccLevels = map[string]qrcode.RecoveryLevel{
	"L": qrcode.Low, "M": qrcode.Medium, "Q": qrcode.High, "H": qrcode.Highest,
}

// buildMatrix encodes content; ecc must already be validated.
func buildMatrix(content, ecc string) (*matrix, error) {
	// A qrcode.QRCode is single-use and not safe for concurrent use: encoding
	// mutates it, so each build gets its own.
	code, err := qrcode.New(content, eccLevels[ecc])
	if err != nil {
		return nil, &GeometryError{Reason: fmt.Sprintf("content of %d bytes is too long for a QR code at ECC %s", len(content), ecc)}
	}
	code.DisableBorder = true
	rows := code.Bitmap()
	n := len(rows)
	m := &matrix{version: code.VersionNumber, size: n, dark: make([]bool, n*n)}
	for y, row := range rows {
		copy(m.dark[y*n:(y+1)*n], row)
	}
	return m, nil
}

// Matrix building dominates render time, so matrices are cached by content
// and ECC level. The cache is bounded both in entries and in modules held, so
// a flood of large symbols cannot pin much memory; eviction is FIFO.
const (
	cacheMaxEntries = 4096
	cacheMaxModules = 16 << 20 // bools, i.e. bytes
)

type matrixCache struct {
	maxEntries, maxModules int

	mu      sync.RWMutex
	entries map[string]*matrix
	order   []string // insertion order, oldest first
	modules int
}

func newMatrixCache(maxEntries, maxModules int) *matrixCache {
	return &matrixCache{maxEntries: maxEntries, maxModules: maxModules, entries: make(map[string]*matrix)}
}

var cache = newMatrixCache(cacheMaxEntries, cacheMaxModules)

func matrixFor(content, ecc string) (*matrix, error) {
	return cache.get(content, ecc)
}

func (c *matrixCache) get(content, ecc string) (*matrix, error) {
	key := ecc + "\x00" + content
	c.mu.RLock()
	m := c.entries[key]
	c.mu.RUnlock()
	if m != nil {
		return m, nil
	}
	m, err := buildMatrix(content, ecc)
	if err != nil {
		return nil, err
	}
	return c.add(key, m), nil
}

// add stores m unless another goroutine stored the same key first, and
// returns the stored matrix.
func (c *matrixCache) add(key string, m *matrix) *matrix {
	c.mu.Lock()
	defer c.mu.Unlock()
	if old := c.entries[key]; old != nil {
		return old
	}
	for len(c.order) > 0 && (len(c.order) >= c.maxEntries || c.modules+len(m.dark) > c.maxModules) {
		oldest := c.order[0]
		c.order = c.order[1:]
		c.modules -= len(c.entries[oldest].dark)
		delete(c.entries, oldest)
	}
	c.entries[key] = m
	c.order = append(c.order, key)
	c.modules += len(m.dark)
	return m
}
