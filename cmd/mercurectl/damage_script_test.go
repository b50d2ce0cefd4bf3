package main

import (
	"os"

	"github.com/rogpeppe/go-internal/testscript"
	bbolt "go.etcd.io/bbolt"
)

// cmdDamage truncates a bolt file to half of the pages it uses, as a copy
// cut short would be:
//
//	damage FILE
func cmdDamage(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: damage FILE")
	}
	path := ts.MkAbs(args[0])
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true})
	ts.Check(err)
	var used int64
	ts.Check(db.View(func(tx *bbolt.Tx) error { used = tx.Size(); return nil }))
	ts.Check(db.Close())
	ts.Check(os.Truncate(path, used/2))
}
