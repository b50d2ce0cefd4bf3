// A reader for text/event-stream bodies, as the HTML standard defines the
// format (section 9.2.6, "Interpreting an event stream"). EventSource cannot
// send an Authorization header or choose the HTTP method; fetch can, so the
// page reads the stream itself.

// readEventStream reads body (a ReadableStream of bytes) until it ends and
// calls, for each complete event, onEvent({id, type, data, retry}); for each
// comment line, onComment(text). id is the last event id in force (as
// EventSource keeps it), or null when the stream never set one.
export async function readEventStream(body, { onEvent, onComment }) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  let lastId = null;
  let ev = { type: '', data: [], retry: null, hasId: false };
  const dispatch = () => {
    if (ev.data.length > 0) {
      onEvent({ id: lastId, type: ev.type, data: ev.data.join('\n'), retry: ev.retry });
    }
    ev = { type: '', data: [], retry: null, hasId: false };
  };
  const line = (l) => {
    if (l === '') { dispatch(); return; }
    if (l[0] === ':') { onComment?.(l.slice(1).replace(/^ /, '')); return; }
    const colon = l.indexOf(':');
    const field = colon < 0 ? l : l.slice(0, colon);
    let value = colon < 0 ? '' : l.slice(colon + 1);
    if (value[0] === ' ') value = value.slice(1);
    switch (field) {
      case 'event': ev.type = value; break;
      case 'data': ev.data.push(value); break;
      case 'id': if (!value.includes('\0')) lastId = value; break;
      case 'retry': if (/^[0-9]+$/.test(value)) ev.retry = Number(value); break;
    }
  };
  let first = true;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += value;
    if (first && buf.length > 0) {
      if (buf[0] === '\uFEFF') buf = buf.slice(1);
      first = false;
    }
    // Lines end with CRLF, LF or CR; a CR at the end of the buffer waits
    // for the next chunk, which may start with its LF.
    let start = 0;
    for (let i = 0; i < buf.length; i++) {
      const c = buf[i];
      if (c !== '\n' && c !== '\r') continue;
      if (c === '\r' && i + 1 === buf.length) break;
      line(buf.slice(start, i));
      if (c === '\r' && buf[i + 1] === '\n') i++;
      start = i + 1;
    }
    buf = buf.slice(start);
  }
}
