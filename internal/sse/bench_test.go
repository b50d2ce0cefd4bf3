package sse

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

// benchStream builds n typical Mercure events with payloads of size bytes.
func benchStream(n, size int, lineEnd string) []byte {
	payload := strings.Repeat("x", size)
	var b []byte
	for i := range n {
		ev := AppendEvent(nil, Event{ID: fmt.Sprintf("urn:uuid:0190c3e4-7f8a-7c3b-9d2e-%012d", i), Type: "update", Data: `{"n":` + fmt.Sprint(i) + `,"p":"` + payload + `"}`})
		if lineEnd != "\n" {
			ev = bytes.ReplaceAll(ev, []byte("\n"), []byte(lineEnd))
		}
		b = append(b, ev...)
		if i%100 == 0 {
			b = append(b, ":\n"...)
		}
	}
	return b
}

func BenchmarkReader(b *testing.B) {
	for _, bc := range []struct {
		name    string
		size    int
		lineEnd string
	}{
		{"small-LF", 100, "\n"},
		{"small-CRLF", 100, "\r\n"},
		{"small-CR", 100, "\r"},
		{"4KiB-LF", 4 << 10, "\n"},
		{"64KiB-LF", 64 << 10, "\n"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			n := max(1, (4<<20)/(bc.size+100))
			stream := benchStream(n, bc.size, bc.lineEnd)
			b.SetBytes(int64(len(stream)))
			b.ReportAllocs()
			for b.Loop() {
				r := NewReader(bytes.NewReader(stream), ReaderOptions{})
				count := 0
				for {
					if _, err := r.Next(); err != nil {
						break
					}
					count++
				}
				if count != n {
					b.Fatalf("%d events, want %d", count, n)
				}
			}
		})
	}
}

func BenchmarkAppendEvent(b *testing.B) {
	ev := Event{ID: "urn:uuid:0190c3e4-7f8a-7c3b-9d2e-000000000001", Type: "update", Data: `{"title":"a book","body":"` + strings.Repeat("x", 200) + "\"}\n{\"second\":\"line\"}"}
	buf := AppendEvent(nil, ev)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendEvent(buf[:0], ev)
	}
}
