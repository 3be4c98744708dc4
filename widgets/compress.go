package widgets

import (
	"bytes"
	"compress/gzip"
	"strconv"
	"strings"
	"sync"

	"github.com/andybalholm/brotli"
)

// compressedScript is one version of a widget script, compressed once at
// the highest levels (a script is sent far more often than it changes).
type compressedScript struct {
	gzip, br []byte
}

// scriptCache keeps the compressed versions by ETag: a changed config or
// setting makes a new body, so a new ETag and one new compression; old
// versions are dropped when the cache is full.
type scriptCache struct {
	mu      sync.Mutex
	entries map[string]*compressedScript
}

const maxCachedScripts = 512

func (sc *scriptCache) get(etag string, body []byte) (*compressedScript, error) {
	sc.mu.Lock()
	e, ok := sc.entries[etag]
	sc.mu.Unlock()
	if ok {
		return e, nil
	}
	var gz, br bytes.Buffer
	zw, err := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(body); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	bw := brotli.NewWriterLevel(&br, brotli.BestCompression)
	if _, err := bw.Write(body); err != nil {
		return nil, err
	}
	if err := bw.Close(); err != nil {
		return nil, err
	}
	e = &compressedScript{gzip: gz.Bytes(), br: br.Bytes()}
	sc.mu.Lock()
	if sc.entries == nil || len(sc.entries) >= maxCachedScripts {
		sc.entries = map[string]*compressedScript{}
	}
	sc.entries[etag] = e
	sc.mu.Unlock()
	return e, nil
}

// pickEncoding chooses br, then gzip, from an Accept-Encoding header
// ("" for identity). A coding with q=0 is refused; "*" covers both.
func pickEncoding(header string) string {
	q := map[string]float64{}
	for _, part := range strings.Split(header, ",") {
		name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		name = strings.ToLower(strings.TrimSpace(name))
		if name == "" {
			continue
		}
		v := 1.0
		if p, ok := strings.CutPrefix(strings.TrimSpace(params), "q="); ok {
			if f, err := strconv.ParseFloat(p, 64); err == nil {
				v = f
			}
		}
		q[name] = v
	}
	for _, enc := range []string{"br", "gzip"} {
		v, ok := q[enc]
		if !ok {
			v, ok = q["*"]
		}
		if ok && v > 0 {
			return enc
		}
	}
	return ""
}
