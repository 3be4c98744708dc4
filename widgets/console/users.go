package console

import (
	"errors"
	"net/mail"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/consentry/consentry/capture"
	"github.com/consentry/consentry/store"
)

// The console roles of the contract.
const (
	RoleAdmin   = "admin"
	RoleEditor  = "editor"
	RoleAuditor = "auditor"
)

var roles = []string{RoleAdmin, RoleEditor, RoleAuditor}

// minPassword is the shortest password a person may choose (NIST 800-63B
// asks for at least 8; a console that can erase data asks for more).
const minPassword = 12

func invalid(field, reason string) error {
	return &capture.Error{Code: capture.CodeInvalidRequest, Message: "invalid " + field + ": " + reason,
		Fields: []capture.FieldError{{Field: field, Reason: reason}}}
}

var errUserNotFound = &capture.Error{Code: capture.CodeNotFound, Message: "no user with that email"}

// normalizeEmail lower-cases an address and checks it is one plain address.
func normalizeEmail(raw string) (string, error) {
	e := strings.ToLower(strings.TrimSpace(raw))
	a, err := mail.ParseAddress(e)
	if err != nil || a.Address != e || len(e) > 254 || a.Name != "" {
		return "", invalid("email", "must be an email address such as ana@example.com")
	}
	return e, nil
}

func checkRole(r string) error {
	for _, x := range roles {
		if r == x {
			return nil
		}
	}
	return invalid("role", "must be one of admin, editor, auditor")
}

func checkNewPassword(p string) error {
	if n := utf8.RuneCountInString(p); n < minPassword || n > 256 || !utf8.ValidString(p) {
		return invalid("password", "must be 12 to 256 characters")
	}
	return nil
}

// users is the user directory over the store, shared by the console, the
// /v1/users API and the offline CLI.
type users struct{ st store.Backend }

// add creates a user. An empty password is generated and returned.
func (u users) add(rawEmail, role, password string) (store.User, string, error) {
	email, err := normalizeEmail(rawEmail)
	var errs []capture.FieldError
	if err != nil {
		errs = append(errs, err.(*capture.Error).Fields...)
	}
	if err := checkRole(role); err != nil {
		errs = append(errs, err.(*capture.Error).Fields...)
	}
	generated := ""
	if password == "" {
		if generated, err = newPassword(); err != nil {
			return store.User{}, "", err
		}
		password = generated
	} else if err := checkNewPassword(password); err != nil {
		errs = append(errs, err.(*capture.Error).Fields...)
	}
	if len(errs) > 0 {
		return store.User{}, "", &capture.Error{Code: capture.CodeInvalidRequest, Message: "invalid user", Fields: errs}
	}
	hash, err := hashPassword(password)
	if err != nil {
		return store.User{}, "", err
	}
	now := time.Now().UTC().Truncate(time.Second)
	rec := store.User{Email: email, Role: role, PasswordHash: hash, CreatedAt: now, UpdatedAt: now}
	if err := u.st.CreateUser(rec); err != nil {
		if errors.Is(err, store.ErrExists) {
			return store.User{}, "", &capture.Error{Code: capture.CodeConflict, Message: "a user with that email exists",
				Fields: []capture.FieldError{{Field: "email", Reason: "already taken"}}}
		}
		return store.User{}, "", err
	}
	return rec, generated, nil
}

// update changes a user's role or disabled flag; disabling revokes every
// session of the user at once.
func (u users) update(rawEmail string, role *string, disabled *bool) (store.User, error) {
	email, err := normalizeEmail(rawEmail)
	if err != nil {
		return store.User{}, errUserNotFound
	}
	if role != nil {
		if err := checkRole(*role); err != nil {
			return store.User{}, err
		}
	}
	rec, err := u.st.UpdateUser(email, func(r *store.User) error {
		if role != nil {
			r.Role = *role
		}
		if disabled != nil {
			r.Disabled = *disabled
		}
		r.UpdatedAt = time.Now().UTC().Truncate(time.Second)
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return store.User{}, errUserNotFound
	}
	if err != nil {
		return store.User{}, err
	}
	if (disabled != nil && *disabled) || role != nil {
		if err := u.revokeSessions(email); err != nil {
			return store.User{}, err
		}
	}
	return rec, nil
}

// resetPassword sets a new password (generated when empty, and returned)
// and signs the user out everywhere.
func (u users) resetPassword(rawEmail, password string) (string, error) {
	email, err := normalizeEmail(rawEmail)
	if err != nil {
		return "", errUserNotFound
	}
	generated := ""
	if password == "" {
		if generated, err = newPassword(); err != nil {
			return "", err
		}
		password = generated
	} else if err := checkNewPassword(password); err != nil {
		return "", err
	}
	hash, err := hashPassword(password)
	if err != nil {
		return "", err
	}
	_, err = u.st.UpdateUser(email, func(r *store.User) error {
		r.PasswordHash = hash
		r.UpdatedAt = time.Now().UTC().Truncate(time.Second)
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return "", errUserNotFound
	}
	if err != nil {
		return "", err
	}
	return generated, u.revokeSessions(email)
}

func (u users) revokeSessions(email string) error {
	_, err := u.st.DeleteSessions(func(s store.Session) bool { return s.Email == email })
	return err
}

// userView is a user as the API and the CLI show it: never the hash.
type userView struct {
	Email     string    `json:"email"`
	Role      string    `json:"role"`
	Disabled  bool      `json:"disabled"`
	CreatedAt time.Time `json:"created_at"`
	Password  string    `json:"password,omitempty"` // only when generated, shown once
}

func viewOf(u store.User) userView {
	return userView{Email: u.Email, Role: u.Role, Disabled: u.Disabled, CreatedAt: u.CreatedAt}
}
