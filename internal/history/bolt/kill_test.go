package bolt

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mercurectl/mercurectl/internal/history"
)

const (
	childEnv     = "BOLT_CHILD"
	childPathEnv = "BOLT_CHILD_PATH"
	childTagEnv  = "BOLT_CHILD_TAG"
	childWorkers = 8
)

// runChild is the process that TestKill9 kills: it appends from several
// goroutines and prints "id seq" for each update as soon as its Append
// returned, that is as soon as the update was acknowledged.
func runChild() int {
	s, err := Open(os.Getenv(childPathEnv), Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 1
	}
	tag := os.Getenv(childTagEnv)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := range childWorkers {
		wg.Go(func() {
			// Bounded, so that an orphan never runs forever.
			for i := range 200_000 {
				id := fmt.Sprintf("%s-w%d-%d", tag, w, i)
				u := &history.Update{ID: id, Topics: []string{"https://example.com/" + id}, Data: "payload of " + id}
				if err := s.Append(context.Background(), u); err != nil {
					fmt.Fprintln(os.Stderr, "child:", err)
					return
				}
				mu.Lock()
				_, err := fmt.Fprintf(os.Stdout, "%s %d\n", id, u.Seq)
				mu.Unlock()
				if err != nil { // the parent is gone
					return
				}
			}
		})
	}
	wg.Wait()
	_ = s.Close()
	return 0
}

type ack struct {
	id  string
	seq uint64
}

// TestKill9 kills a publishing process with SIGKILL mid-stream, several times
// over the same file, and checks that every acknowledged update survived, in
// order, and that the file is consistent.
func TestKill9(t *testing.T) {
	t.Parallel()
	path := tempPath(t)
	var acks []ack
	for round := range 3 {
		acks = append(acks, runAndKill(t, path, fmt.Sprintf("r%d", round), 1500+round*700)...)
	}

	s := openT(t, path, Options{})
	defer func() { _ = s.Close() }()
	first, last, n := checkFile(t, s)
	t.Logf("%d acknowledged, %d stored (seq %d..%d)", len(acks), n, first, last)
	if s.LastSeq() != last {
		t.Errorf("LastSeq = %d, want the last stored %d", s.LastSeq(), last)
	}
	stored := make(map[uint64]*history.Update, n)
	if err := s.Scan(t.Context(), 0, math.MaxUint64, func(u *history.Update) error {
		stored[u.Seq] = u
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	prev := map[string]uint64{} // per writer goroutine: acks come in Seq order
	for _, a := range acks {
		seq, ok, err := s.Lookup(t.Context(), a.id)
		if err != nil || !ok || seq != a.seq {
			t.Fatalf("acknowledged %q (seq %d): Lookup = %d, %v, %v", a.id, a.seq, seq, ok, err)
		}
		u := stored[a.seq]
		if u == nil || u.ID != a.id || u.Data != "payload of "+a.id {
			t.Fatalf("acknowledged %q (seq %d) is not what Scan returns at that seq: %+v", a.id, a.seq, u)
		}
		w := a.id[:strings.LastIndexByte(a.id, '-')]
		if a.seq <= prev[w] {
			t.Fatalf("%s acknowledged seq %d after %d", w, a.seq, prev[w])
		}
		prev[w] = a.seq
	}
}

// runAndKill starts a child appending to path, reads acks until it has min,
// kills the child with SIGKILL and returns every ack it printed.
func runAndKill(t *testing.T, path, tag string, min int) []ack {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=1", childPathEnv+"="+path, childTagEnv+"="+tag)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	kill := func() {
		if !killed {
			killed = true
			if err := cmd.Process.Kill(); err != nil {
				t.Errorf("kill: %v", err)
			}
		}
	}
	defer kill()
	timer := time.AfterFunc(60*time.Second, kill)
	defer timer.Stop()

	var acks []ack
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		id, seqText, ok := strings.Cut(sc.Text(), " ")
		seq, err := strconv.ParseUint(seqText, 10, 64)
		if !ok || err != nil {
			t.Fatalf("bad line from the child: %q", sc.Text())
		}
		acks = append(acks, ack{id, seq})
		if len(acks) == min/2 && tag == "r0" {
			// While the child holds the file, another process cannot open it.
			if _, err := Open(path, Options{LockTimeout: 50 * time.Millisecond}); !errors.Is(err, ErrInUse) {
				t.Errorf("Open while another process holds the file = %v, want ErrInUse", err)
			}
		}
		if len(acks) == min {
			kill()
		}
		// Lines already in the pipe when the child died were acknowledged
		// too: keep reading to EOF.
	}
	err = cmd.Wait()
	if len(acks) < min {
		t.Fatalf("the child stopped after %d acks: %v\n%s", len(acks), err, stderr.String())
	}
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) || exitErr.Exited() {
		t.Fatalf("child was not killed by a signal: %v\n%s", err, stderr.String())
	}
	t.Logf("round %s: killed after %d acks", tag, len(acks))
	return acks
}
