package hub

import (
	"net"
	"strconv"
	"time"
)

// A stream taken over from net/http (for parking) keeps the response's
// chunked transfer coding (RFC 9112, section 7.1): net/http has sent the
// headers and whole chunks, and the hub writes the next chunks itself,
// then the last chunk, exactly as net/http would have.

// chunkReserve is the room a parked write leaves in front of its data for
// the chunk header: up to 16 hex digits and CRLF.
const chunkReserve = 16 + 2

// chunkEnd is the last chunk with an empty trailer section: the response
// is complete.
var chunkEnd = []byte("0\r\n\r\n")

var crlf = []byte("\r\n")

// frameChunk makes one chunk of buf[chunkReserve:] in place: it writes the
// header right before the data and appends the CRLF that ends it. It
// returns the (possibly grown) buffer and where the chunk starts in it.
func frameChunk(buf []byte) ([]byte, int) {
	var hdr [chunkReserve]byte
	h := append(strconv.AppendInt(hdr[:0], int64(len(buf)-chunkReserve), 16), '\r', '\n')
	start := chunkReserve - len(h)
	copy(buf[start:], h)
	return append(buf, crlf...), start
}

// writeChunk writes data as one chunk, within timeout (0: none).
func writeChunk(nc net.Conn, data []byte, timeout time.Duration) error {
	if timeout > 0 {
		_ = nc.SetWriteDeadline(time.Now().Add(timeout))
	}
	var hdr [chunkReserve]byte
	bufs := net.Buffers{append(strconv.AppendInt(hdr[:0], int64(len(data)), 16), '\r', '\n'), data, crlf}
	_, err := bufs.WriteTo(nc)
	return err
}

// writeRaw writes p as it is, within timeout (0: none).
func writeRaw(nc net.Conn, p []byte, timeout time.Duration) error {
	if timeout > 0 {
		_ = nc.SetWriteDeadline(time.Now().Add(timeout))
	}
	_, err := nc.Write(p)
	return err
}
