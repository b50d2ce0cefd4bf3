package token

import (
	"bytes"
	"encoding/json"
	"errors"
)

// maxJSONDepth bounds the nesting that checkUniqueMembers follows; a token is
// at most maxTokenSize bytes, so this only matters for hostile input.
const maxJSONDepth = 64

// errDuplicateMember is what checkUniqueMembers reports.
var errDuplicateMember = errors.New("duplicate JSON member")

// checkUniqueMembers fails when some object in the JSON text b, at any
// depth, has two members with the same name (after unescaping, so "a" and
// "\u0061" are one name). RFC 7519 section 4 lets a parser either reject
// such a claim set or keep the last member; parsers that disagree on that
// read different grants from one signed token, so the hub refuses them.
func checkUniqueMembers(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	return uniqueValue(dec, 0)
}

// uniqueValue reads one JSON value from dec, checking its objects.
func uniqueValue(dec *json.Decoder, depth int) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return nil // a scalar
	}
	if depth >= maxJSONDepth {
		return errors.New("JSON nested too deeply")
	}
	if d == '{' {
		seen := make(map[string]struct{})
		for dec.More() {
			k, err := dec.Token()
			if err != nil {
				return err
			}
			name, _ := k.(string)
			if _, dup := seen[name]; dup {
				return errDuplicateMember
			}
			seen[name] = struct{}{}
			if err := uniqueValue(dec, depth+1); err != nil {
				return err
			}
		}
	} else {
		for dec.More() {
			if err := uniqueValue(dec, depth+1); err != nil {
				return err
			}
		}
	}
	_, err = dec.Token() // the closing delimiter
	return err
}
