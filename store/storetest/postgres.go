// Package storetest holds helpers for the store tests.
//
// (PostgresDatabase here is a stand-in until pg-wire's storetest.go lands.)
package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
)

// PostgresDatabase creates a database of its own on the cluster named by
// CONSENTRY_TEST_PG, dropped when the test ends, and returns its URL. The
// test is skipped when the variable is unset, except on CI (CI=true),
// where that fails: the PostgreSQL tests must not silently not run there.
func PostgresDatabase(tb testing.TB) string {
	tb.Helper()
	admin := os.Getenv("CONSENTRY_TEST_PG")
	if admin == "" {
		if os.Getenv("CI") == "true" {
			tb.Fatal("CONSENTRY_TEST_PG is unset on CI (eval \"$(bash .ci/postgres start)\")")
		}
		tb.Skip("CONSENTRY_TEST_PG is unset: no PostgreSQL to test against")
	}
	var b [8]byte
	rand.Read(b[:])
	name := "consentry_test_" + hex.EncodeToString(b[:])
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		tb.Fatalf("connect to CONSENTRY_TEST_PG: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		tb.Fatalf("create database: %v", err)
	}
	tb.Cleanup(func() {
		conn, err := pgx.Connect(ctx, admin)
		if err != nil {
			tb.Errorf("connect to drop %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			tb.Errorf("drop database %s: %v", name, err)
		}
	})
	u, err := url.Parse(admin)
	if err != nil {
		tb.Fatalf("CONSENTRY_TEST_PG: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}
