// A Server-Sent Events parser (the WHATWG event-stream format), so the
// stream can be read with fetch — unlike EventSource, fetch can send the
// Authorization header.

export class SSEParser {
  constructor(onEvent, onComment = () => {}) {
    this.onEvent = onEvent;
    this.onComment = onComment;
    this.buf = '';
    this.event = '';
    this.data = [];
  }

  /** push feeds decoded text; complete events are dispatched. */
  push(text) {
    this.buf += text;
    let i;
    while ((i = this.buf.search(/[\r\n]/)) >= 0) {
      // A CR at the very end may be the first half of CRLF: wait for more.
      if (this.buf[i] === '\r' && i === this.buf.length - 1) break;
      const line = this.buf.slice(0, i);
      this.buf = this.buf.slice(i + (this.buf[i] === '\r' && this.buf[i + 1] === '\n' ? 2 : 1));
      this.line(line);
    }
  }

  line(line) {
    if (line === '') {
      if (this.data.length) this.onEvent(this.event || 'message', this.data.join('\n'));
      this.event = '';
      this.data = [];
      return;
    }
    if (line[0] === ':') {
      this.onComment(line.slice(1));
      return;
    }
    const c = line.indexOf(':');
    const field = c < 0 ? line : line.slice(0, c);
    let value = c < 0 ? '' : line.slice(c + 1);
    if (value[0] === ' ') value = value.slice(1);
    if (field === 'event') this.event = value;
    else if (field === 'data') this.data.push(value);
  }
}
