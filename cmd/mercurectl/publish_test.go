package main

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/mercurectl/mercurectl/internal/client"
	"github.com/mercurectl/mercurectl/internal/token"
)

func TestNewPublishCmd(t *testing.T) {
	t.Parallel()
	retry := uint64(2500)
	defConn := connectionOptions{Hub: defaultHubURL, JWTKey: "k", JWTAlg: "HS256", Protocol: "auto", protocol: client.ProtocolAuto}
	tests := []struct {
		name     string
		args     []string
		env      envMap
		want     publishOptions
		wantCode int
		wantErr  string
	}{
		{
			name: "every flag",
			args: []string{"--topic", "https://example.com/a", "-t", "https://example.com/b", "--data", "hello", "--private",
				"--id", "urn:x", "--type", "chat", "--retry", "2500", "--hub", "http://h:1", "--jwt", "tok", "--protocol", "8"},
			want: publishOptions{
				Topics: []string{"https://example.com/a", "https://example.com/b"}, Data: "hello", Private: true,
				ID: "urn:x", Type: "chat", Retry: &retry, retry: retry,
				Conn: connectionOptions{Hub: "http://h:1", JWT: "tok", JWTAlg: "HS256", Protocol: "8", protocol: client.Protocol08},
			},
		},
		{
			name: "credentials and hub from the environment",
			args: []string{"--topic", "x"},
			env:  envMap{"MERCURE_URL": "http://env:3000", "MERCURE_JWT_SECRET": "secret", "MERCURE_PROTOCOL": "7", "MERCURE_ISSUER": "a b", "MERCURE_AUDIENCE": "aud"},
			want: publishOptions{Topics: []string{"x"}, Conn: connectionOptions{
				Hub: "http://env:3000", JWTKey: "secret", JWTAlg: "HS256", Issuer: "a b", Audience: "aud", Protocol: "7", protocol: client.Protocol07}},
		},
		{
			name: "MERCURE_JWT_KEY before MERCURE_JWT_SECRET, flag before both",
			args: []string{"--topic", "x", "--jwt-key", "flag"},
			env:  envMap{"MERCURE_JWT_KEY": "key", "MERCURE_JWT_SECRET": "secret"},
			want: publishOptions{Topics: []string{"x"}, Conn: connectionOptions{Hub: defaultHubURL, JWTKey: "flag", JWTAlg: "HS256", Protocol: "auto"}},
		},
		{
			name: "no --retry leaves it unset",
			args: []string{"--topic", "x"},
			env:  envMap{"MERCURE_JWT_KEY": "k"},
			want: publishOptions{Topics: []string{"x"}, Conn: defConn},
		},
		{name: "no topic", args: []string{"--data", "x"}, env: envMap{"MERCURE_JWT_KEY": "k"}, wantCode: exitUsage, wantErr: "publish: at least one --topic is required"},
		{name: "empty topic", args: []string{"--topic", ""}, env: envMap{"MERCURE_JWT_KEY": "k"}, wantCode: exitUsage, wantErr: "--topic must not be empty"},
		{name: "no credentials", args: []string{"--topic", "x"}, wantCode: exitUsage, wantErr: "publish: no credentials: pass --jwt TOKEN or --jwt-key KEY"},
		{name: "stdin twice", args: []string{"--topic", "x", "--data", "@-", "--jwt", "@-"}, wantCode: exitUsage, wantErr: "cannot both read stdin"},
		{name: "bad protocol", args: []string{"--topic", "x", "--protocol", "9"}, env: envMap{"MERCURE_JWT_KEY": "k"}, wantCode: exitUsage, wantErr: `--protocol "9": want auto, 7 or 8`},
		{name: "bad hub", args: []string{"--topic", "x", "--hub", "ftp://h"}, env: envMap{"MERCURE_JWT_KEY": "k"}, wantCode: exitUsage, wantErr: "--hub: hub URL \"ftp://h\": scheme must be http or https"},
		{name: "bad alg", args: []string{"--topic", "x", "--jwt-alg", "none"}, env: envMap{"MERCURE_JWT_KEY": "k"}, wantCode: exitUsage, wantErr: "never accepted"},
		{name: "bad retry", args: []string{"--topic", "x", "--retry", "-5"}, env: envMap{"MERCURE_JWT_KEY": "k"}, wantCode: exitUsage, wantErr: "invalid argument"},
		{name: "positional argument", args: []string{"x"}, wantCode: exitUsage, wantErr: "takes no arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f, _ := newTestFactory(tt.env)
			var got *publishOptions
			cmd := newPublishCmd(f, func(o *publishOptions) error { got = o; return nil })
			err := execCmd(t, f, cmd, tt.args...)
			if checkExit(t, err, tt.wantCode, tt.wantErr) {
				return
			}
			got.IO, got.HTTPClient, got.Now, got.Logger = nil, nil, nil, nil
			if !reflect.DeepEqual(*got, tt.want) {
				t.Errorf("options\n got %+v\nwant %+v", *got, tt.want)
			}
		})
	}
}

func TestRunPublish(t *testing.T) {
	t.Parallel()
	th := newClientTestHub(t, true)
	dir := t.TempDir()
	file := filepath.Join(dir, "data.bin")
	fileData := "line 1\r\nline 2\n\n" // exact bytes, trailing newlines included
	if err := os.WriteFile(file, []byte(fileData), 0o600); err != nil {
		t.Fatal(err)
	}
	legacyTok := legacyTestToken(t, []string{"*"}, nil)
	tests := []struct {
		name     string
		opts     publishOptions
		stdin    string
		wantOut  string // "" means: a generated urn:uuid id
		wantCode int
		wantErr  string
		// wantData, when set, is the data the hub must have received.
		wantData *string
	}{
		{name: "minted token, hub's id", opts: publishOptions{Topics: []string{"https://example.com/a"}, Data: "hi"}},
		{name: "chosen id", opts: publishOptions{Topics: []string{"https://example.com/a"}, ID: "id-1", Type: "t", Retry: new(uint64(10))}, wantOut: "id-1\n"},
		{name: "data from a file, exact", opts: publishOptions{Topics: []string{"https://example.com/file"}, ID: "id-file", Data: "@" + file}, wantOut: "id-file\n", wantData: &fileData},
		{name: "data from stdin, exact", opts: publishOptions{Topics: []string{"https://example.com/stdin"}, ID: "id-stdin", Data: "@-"}, stdin: "from stdin\n", wantOut: "id-stdin\n", wantData: new("from stdin\n")},
		{name: "stdin not read without @-", opts: publishOptions{Topics: []string{"https://example.com/nostdin"}, ID: "id-nostdin", Data: "-"}, stdin: "ignored", wantOut: "id-nostdin\n", wantData: new("-")},
		{name: "legacy --jwt speaks draft-07", opts: publishOptions{Topics: []string{"https://example.com/a"}, ID: "id-jwt", Conn: connectionOptions{JWT: legacyTok}}, wantOut: "id-jwt\n"},
		{name: "private", opts: publishOptions{Topics: []string{"https://example.com/p"}, Private: true, ID: "id-private"}, wantOut: "id-private\n"},
		{name: "missing file", opts: publishOptions{Topics: []string{"x"}, Data: "@" + filepath.Join(dir, "nope")}, wantCode: exitUsage, wantErr: "publish: --data: open "},
		{name: "wrong key", opts: publishOptions{Topics: []string{"x"}, Conn: connectionOptions{JWTKey: "wrong-key-wrong-key-wrong-key-000"}}, wantCode: exitCredentials, wantErr: "publish: hub answered 401 Unauthorized"},
		{name: "token without the topic", opts: publishOptions{Topics: []string{"https://example.com/other"}, Conn: connectionOptions{JWT: legacyTestToken(t, []string{"https://example.com/a"}, nil)}}, wantCode: exitCredentials, wantErr: "403"},
		{name: "refused update", opts: publishOptions{Topics: []string{"x"}, ID: "#bad"}, wantCode: exitError, wantErr: "publish: hub answered 400 Bad Request"},
		{name: "unreachable", opts: publishOptions{Topics: []string{"x"}, Conn: connectionOptions{Hub: closedURL(t)}}, wantCode: exitUnreachable, wantErr: "publish: hub unreachable: "},
		{name: "unreadable key", opts: publishOptions{Topics: []string{"x"}, Conn: connectionOptions{JWTKey: "@" + filepath.Join(dir, "nokey")}}, wantCode: exitUsage, wantErr: "publish: --jwt-key: read secret"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f, ts := newTestFactory(nil)
			ts.In.WriteString(tt.stdin)
			opts := tt.opts
			opts.IO, opts.HTTPClient, opts.Now = f.IO, f.HTTPClient, f.Now
			if opts.Conn.Hub == "" {
				opts.Conn.Hub = th.URL
			}
			if opts.Conn.JWT == "" && opts.Conn.JWTKey == "" {
				opts.Conn.JWTKey = clientTestKey
			}
			opts.Conn.JWTAlg, opts.Conn.Protocol = "HS256", "auto"
			if err := opts.validate(); err != nil {
				t.Fatal(err)
			}
			err := runPublish(t.Context(), &opts)
			if code := exitCode(err); code != tt.wantCode {
				t.Fatalf("exit %d (%v), want %d", code, err, tt.wantCode)
			}
			if tt.wantErr != "" {
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("error %q, want %q", err, tt.wantErr)
				}
				if ts.Out.String() != "" {
					t.Errorf("stdout %q on failure", ts.Out.String())
				}
				return
			}
			out := ts.Out.String()
			switch {
			case tt.wantOut == "" && (!strings.HasPrefix(out, "urn:uuid:") || strings.Count(out, "\n") != 1 || !strings.HasSuffix(out, "\n")):
				t.Errorf("stdout %q, want one line with the generated id", out)
			case tt.wantOut != "" && out != tt.wantOut:
				t.Errorf("stdout %q, want %q", out, tt.wantOut)
			}
			if tt.stdin != "" && tt.opts.Data != "@-" && ts.In.Len() != len(tt.stdin) {
				t.Error("stdin was read without --data @-")
			}
			if tt.wantData != nil {
				if got, _ := th.sentData(tt.opts.ID); got != *tt.wantData {
					t.Errorf("published data %q, want %q", got, *tt.wantData)
				}
			}
		})
	}
}

// legacyTestToken mints a legacy token with the test key.
func legacyTestToken(tb testing.TB, publish, subscribe []string) string {
	tb.Helper()
	tok, err := token.Mint(token.MintOptions{Key: []byte(clientTestKey), Publish: publish, Subscribe: subscribe, TTL: time.Hour})
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}
