package console

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/consentry/consentry/capture"
	"github.com/consentry/consentry/store/backend"
)

const usersUsage = `usage: consentry users <add|list|disable|enable|reset-password> [flags]

  consentry users add --email E --role admin|editor|auditor   (password from standard input, or generated and printed once)
  consentry users list
  consentry users disable --email E       (signs the user out everywhere)
  consentry users enable --email E
  consentry users reset-password --email E (password from standard input, or generated and printed once)

flags: --db FILE ($CONSENTRY_DB, default ./consentry.db) while no server holds the file,
       or --db postgres://… (servers may run meanwhile),
       or --url URL of a running server with an admin --key ($CONSENTRY_API_KEY)
`

// RunUsers is `consentry users …`.
func RunUsers(args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(stderr, usersUsage)
		return 2
	}
	cmd := args[0]
	fs := flag.NewFlagSet("users "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	db := fs.String("db", firstNonEmpty(getenv("CONSENTRY_DB"), "./consentry.db"), "database file or postgres:// URL ($CONSENTRY_DB)")
	server := fs.String("url", "", "base URL of a running server")
	key := fs.String("key", getenv("CONSENTRY_API_KEY"), "admin API key for --url ($CONSENTRY_API_KEY)")
	email := fs.String("email", "", "the user's email")
	role := fs.String("role", "", "admin, editor or auditor")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if fs.NArg() > 0 || (cmd != "list" && *email == "") || (cmd == "add" && *role == "") {
		fmt.Fprint(stderr, usersUsage)
		return 2
	}
	var dir userDirectory
	if *server != "" {
		dir = remoteUsers{base: strings.TrimRight(*server, "/"), key: *key}
	} else {
		onPostgres := backend.IsURL(*db)
		if !onPostgres {
			if _, err := os.Stat(*db); err != nil {
				fmt.Fprintf(stderr, "users: %v (start the server once with this --db to create it)\n", err)
				return 1
			}
		}
		st, err := backend.Open(*db)
		if err != nil {
			if onPostgres {
				fmt.Fprintf(stderr, "users: %v\n", err)
			} else {
				fmt.Fprintf(stderr, "users: %v (while a server runs, use --url and an admin --key)\n", err)
			}
			return 1
		}
		defer st.Close()
		dir = localUsers{users{st}}
	}
	switch cmd {
	case "add", "reset-password":
		password, err := readPassword(stdin)
		if err != nil {
			fmt.Fprintln(stderr, "users:", err)
			return 1
		}
		var v userView
		if cmd == "add" {
			v, err = dir.add(*email, *role, password)
		} else {
			v, err = dir.reset(*email, password)
		}
		if err != nil {
			fmt.Fprintln(stderr, "users:", cliMessage(err))
			return 1
		}
		if cmd == "add" {
			fmt.Fprintf(stdout, "added %s (%s)\n", v.Email, v.Role)
		} else {
			fmt.Fprintf(stdout, "password of %s changed; its sessions are signed out\n", v.Email)
		}
		if v.Password != "" {
			fmt.Fprintf(stdout, "\nIts password is shown only this once:\n\n    %s\n\n", v.Password)
		}
	case "disable", "enable":
		d := cmd == "disable"
		v, err := dir.setDisabled(*email, d)
		if err != nil {
			fmt.Fprintln(stderr, "users:", cliMessage(err))
			return 1
		}
		fmt.Fprintf(stdout, "%sd %s\n", cmd, v.Email)
	case "list":
		list, err := dir.list()
		if err != nil {
			fmt.Fprintln(stderr, "users:", cliMessage(err))
			return 1
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "EMAIL\tROLE\tSTATE\tCREATED")
		for _, u := range list {
			state := "active"
			if u.Disabled {
				state = "disabled"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", u.Email, u.Role, state, u.CreatedAt.Format(time.RFC3339))
		}
		tw.Flush()
	default:
		fmt.Fprintf(stderr, "users: unknown command %q\n\n%s", cmd, usersUsage)
		return 2
	}
	return 0
}

// readPassword reads a password from the first line of stdin when stdin is
// not a terminal; "" (generate one) otherwise or when it is empty.
func readPassword(stdin io.Reader) (string, error) {
	if f, ok := stdin.(*os.File); ok {
		if fi, err := f.Stat(); err != nil || fi.Mode()&os.ModeCharDevice != 0 {
			return "", nil
		}
	}
	line, err := bufio.NewReader(io.LimitReader(stdin, 1024)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	return strings.TrimRight(line, "\r\n"), nil
}

func firstNonEmpty(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

func cliMessage(err error) string {
	var e *capture.Error
	if !errors.As(err, &e) {
		return err.Error()
	}
	msg := e.Message
	for _, f := range e.Fields {
		if !strings.Contains(msg, f.Reason) {
			msg += "; " + f.Field + " " + f.Reason
		}
	}
	return msg
}

// userDirectory is the users of a database file or of a running server.
type userDirectory interface {
	add(email, role, password string) (userView, error)
	reset(email, password string) (userView, error)
	setDisabled(email string, disabled bool) (userView, error)
	list() ([]userView, error)
}

type localUsers struct{ u users }

func (l localUsers) add(email, role, password string) (userView, error) {
	rec, generated, err := l.u.add(email, role, password)
	v := viewOf(rec)
	v.Password = generated
	return v, err
}

func (l localUsers) reset(email, password string) (userView, error) {
	generated, err := l.u.resetPassword(email, password)
	return userView{Email: strings.ToLower(email), Password: generated}, err
}

func (l localUsers) setDisabled(email string, disabled bool) (userView, error) {
	rec, err := l.u.update(email, nil, &disabled)
	return viewOf(rec), err
}

func (l localUsers) list() ([]userView, error) {
	recs, err := l.u.st.Users()
	out := make([]userView, len(recs))
	for i, r := range recs {
		out[i] = viewOf(r)
	}
	return out, err
}

// remoteUsers calls /v1/users of a running server.
type remoteUsers struct{ base, key string }

func (r remoteUsers) call(method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, r.base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+r.key)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := (&http.Client{Timeout: time.Minute}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		var env struct {
			Error *capture.Error `json:"error"`
		}
		if json.Unmarshal(b, &env) == nil && env.Error != nil {
			return env.Error
		}
		return fmt.Errorf("server answered %s", resp.Status)
	}
	return json.Unmarshal(b, out)
}

func (r remoteUsers) add(email, role, password string) (userView, error) {
	var v userView
	err := r.call("POST", "/v1/users", addUserRequest{Email: email, Role: role, Password: password}, &v)
	return v, err
}

func (r remoteUsers) reset(email, password string) (userView, error) {
	var v userView
	err := r.call("POST", "/v1/users/"+url.PathEscape(email)+"/password", passwordRequest{Password: password}, &v)
	return v, err
}

func (r remoteUsers) setDisabled(email string, disabled bool) (userView, error) {
	var v userView
	err := r.call("PATCH", "/v1/users/"+url.PathEscape(email), patchUserRequest{Disabled: &disabled}, &v)
	return v, err
}

func (r remoteUsers) list() ([]userView, error) {
	var out struct {
		Users []userView `json:"users"`
	}
	err := r.call("GET", "/v1/users", nil, &out)
	return out.Users, err
}
