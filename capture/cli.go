package capture

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/consentry/consentry/capture/ledger"
	"github.com/consentry/consentry/store/backend"
)

// RunVerify is `consentry verify FILE [--public-key KEY]`: exit 0 and
// "OK <n> events" when the export holds, exit 1 and the first bad seq
// otherwise, exit 2 on usage errors.
func RunVerify(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	pub := fs.String("public-key", "", "the checkpoint public key the export must be signed with (base64, as in the checkpoint's public_key)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: consentry verify FILE [--public-key KEY]")
		fs.PrintDefaults()
	}
	file, rest := splitFirstArg(args)
	if err := fs.Parse(rest); err != nil {
		return 2
	}
	if file == "" && fs.NArg() == 1 {
		file = fs.Arg(0)
	} else if fs.NArg() > 0 || file == "" {
		fs.Usage()
		return 2
	}
	f, err := os.Open(file)
	if err != nil {
		fmt.Fprintln(stderr, "verify:", err)
		return 2
	}
	defer f.Close()
	rep, err := ledger.VerifyExportReport(f, strings.TrimSpace(*pub))
	var ve *ledger.VerifyError
	if errors.As(err, &ve) {
		fmt.Fprintf(stdout, "FAIL at seq %d: %s\n", ve.Seq, ve.Reason)
		return 1
	}
	fmt.Fprintf(stdout, "OK %d events\n", rep.Events)
	if rep.Ranged && rep.Events == 0 {
		fmt.Fprintln(stdout, "range: no events in it")
	} else if rep.Ranged {
		fmt.Fprintf(stdout, "range: seq %d to %d, continuing from prev_hash %s (events before it are not in this file)\n",
			rep.FirstSeq, rep.LastSeq, rep.PrevHash)
	}
	if rep.Pinned {
		fmt.Fprintf(stdout, "key: %s %s, pinned with --public-key\n", rep.KeyID, rep.PublicKey)
	} else {
		fmt.Fprintf(stdout, "key: %s %s, taken from the file (not pinned: pass --public-key with the checkpoint's public_key to pin it)\n",
			rep.KeyID, rep.PublicKey)
	}
	return 0
}

// RunImport is `consentry import FILE --url URL`: it streams a CSV or
// NDJSON file to a running server's POST /v1/imports (key from --key or
// CONSENTRY_API_KEY) with a progress bar on stderr, then prints the
// counts and the errors by row. Exit 0 when every row was recorded or
// skipped, 1 when rows were rejected or the import failed, 2 on usage.
func RunImport(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("import", flag.ContinueOnError)
	fs.SetOutput(stderr)
	server := fs.String("url", getenv("CONSENTRY_URL"), "base URL of the running server, e.g. http://127.0.0.1:8080")
	key := fs.String("key", getenv("CONSENTRY_API_KEY"), "API key with the consent:write scope ($CONSENTRY_API_KEY)")
	format := fs.String("format", "", "csv or ndjson (default: by the file's extension)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: consentry import FILE --url URL [--format csv|ndjson]   (key from $CONSENTRY_API_KEY)")
		fmt.Fprintln(stderr, "  each row names the person by phone, user_id (a WhatsApp user id) or both; see docs/API.md, Imports")
		fs.PrintDefaults()
	}
	file, rest := splitFirstArg(args)
	if err := fs.Parse(rest); err != nil {
		return 2
	}
	if file == "" && fs.NArg() == 1 {
		file = fs.Arg(0)
	} else if fs.NArg() > 0 || file == "" || *server == "" {
		fs.Usage()
		return 2
	}
	if *key == "" {
		fmt.Fprintln(stderr, "import: no API key: set CONSENTRY_API_KEY (or --key) to a key with the consent:write scope")
		return 2
	}
	kind := strings.ToLower(*format)
	if kind == "" {
		switch strings.ToLower(filepath.Ext(file)) {
		case ".csv", ".txt":
			kind = "csv"
		case ".ndjson", ".jsonl", ".json":
			kind = "ndjson"
		}
	}
	contentType := map[string]string{"csv": "text/csv", "ndjson": "application/x-ndjson"}[kind]
	if contentType == "" {
		fmt.Fprintln(stderr, "import: say --format csv or --format ndjson")
		return 2
	}
	f, err := os.Open(file)
	if err != nil {
		fmt.Fprintln(stderr, "import:", err)
		return 1
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		fmt.Fprintln(stderr, "import:", err)
		return 1
	}
	bar := newProgressBar(stderr, int(info.Size()))
	req, err := http.NewRequest(http.MethodPost, strings.TrimRight(*server, "/")+streamedPath, &progressReader{r: f, bar: bar})
	if err != nil {
		fmt.Fprintln(stderr, "import:", err)
		return 2
	}
	req.ContentLength = info.Size()
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Authorization", "Bearer "+*key)
	resp, err := http.DefaultClient.Do(req)
	bar.finish()
	if err != nil {
		fmt.Fprintln(stderr, "import:", err)
		return 1
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		fmt.Fprintln(stderr, "import:", err)
		return 1
	}
	if resp.StatusCode != http.StatusOK {
		var env envelope
		if json.Unmarshal(raw, &env) == nil && env.Error != nil {
			fmt.Fprintln(stderr, "import: the server refused it:", cliMessage(env.Error))
		} else {
			fmt.Fprintf(stderr, "import: the server answered %s\n", resp.Status)
		}
		return 1
	}
	var res ImportResult
	if err := json.Unmarshal(raw, &res); err != nil {
		fmt.Fprintln(stderr, "import: unreadable answer:", err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: %d recorded, %d skipped (ref seen before), %d rejected", res.ImportID, res.Accepted, res.Skipped, res.Rejected)
	if res.Superseded > 0 {
		fmt.Fprintf(stdout, ", %d kept as history only (a later decision stands)", res.Superseded)
	}
	fmt.Fprintln(stdout)
	for _, e := range res.Errors {
		field := e.Field
		if field == "" {
			field = "-"
		}
		fmt.Fprintf(stdout, "row %d\t%s\t%s\n", e.Row, field, e.Reason)
	}
	if res.Rejected > len(res.Errors) {
		fmt.Fprintf(stdout, "(only the first %d errors are listed)\n", len(res.Errors))
	}
	if res.Rejected > 0 {
		return 1
	}
	return 0
}

// progressReader moves a progress bar as a file is read.
type progressReader struct {
	r   io.Reader
	bar *progressBar
	n   int
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if n > 0 && p.n+n < p.bar.total { // finish draws the full bar once
		p.n += n
		p.bar.set(p.n)
	}
	return n, err
}

// splitFirstArg lets a positional FILE come before the flags.
func splitFirstArg(args []string) (string, []string) {
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		return args[0], args[1:]
	}
	return "", args
}

// RunBackup is `consentry backup --out FILE`: a consistent copy of the
// database. With --url it asks a running server (GET /v1/backup, admin key
// from --key or CONSENTRY_API_KEY); otherwise it opens --db directly, which
// works only while no server holds the file.
func RunBackup(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("backup", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "", "file to write the backup to")
	db := fs.String("db", firstNonEmpty(getenv("CONSENTRY_DB"), "./consentry.db"), "bbolt database file ($CONSENTRY_DB; for PostgreSQL use pg_dump)")
	server := fs.String("url", "", "base URL of a running server, e.g. http://127.0.0.1:8080")
	key := fs.String("key", getenv("CONSENTRY_API_KEY"), "admin API key for --url ($CONSENTRY_API_KEY)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *out == "" {
		fmt.Fprintln(stderr, "backup: --out FILE is required")
		return 2
	}
	tmp := *out + ".part"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		fmt.Fprintln(stderr, "backup:", err)
		return 1
	}
	var n int64
	if *server != "" {
		n, err = downloadBackup(strings.TrimRight(*server, "/")+"/v1/backup", *key, f)
	} else {
		n, err = backupFile(*db, f)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, *out)
	}
	if err != nil {
		os.Remove(tmp)
		fmt.Fprintln(stderr, "backup:", err)
		return 1
	}
	fmt.Fprintf(stdout, "wrote %s (%d bytes)\n", *out, n)
	return 0
}

// errPostgresBackup answers a backup of a PostgreSQL database, which is
// the database's own tools' job.
var errPostgresBackup = errors.New("--db is a PostgreSQL database: back it up with pg_dump " +
	"(for example pg_dump --format=custom --file consentry.dump \"$CONSENTRY_DB\") or your provider's snapshots; " +
	"consentry backup copies bbolt files only")

func backupFile(path string, w io.Writer) (int64, error) {
	if backend.IsURL(path) {
		return 0, errPostgresBackup
	}
	if _, err := os.Stat(path); err != nil {
		return 0, err
	}
	st, err := backend.Open(path)
	if err != nil {
		return 0, fmt.Errorf("%w (if the server is running, use --url and an admin --key)", err)
	}
	defer st.Close()
	return st.Backup(w)
}

func downloadBackup(url, key string, w io.Writer) (int64, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := (&http.Client{Timeout: 30 * time.Minute}).Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return 0, fmt.Errorf("server answered %s: %s", resp.Status, strings.TrimSpace(string(msg)))
	}
	return io.Copy(w, resp.Body)
}

func firstNonEmpty(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}
