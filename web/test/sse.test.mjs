import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SSEParser } from '../src/sse.js';

test('events split across chunks, CRLF, comments, multi-line data', () => {
  const got = [];
  const comments = [];
  const p = new SSEParser((e, d) => got.push([e, d]), (c) => comments.push(c));
  p.push(': hello\n\nevent: snap');
  p.push('shot\ndata: {"a":');
  p.push('1}\r');
  p.push('\n\r\ndata: x\ndata:y\n\nevent: other\ndata: z\n\n');
  assert.deepEqual(got, [['snapshot', '{"a":1}'], ['message', 'x\ny'], ['other', 'z']]);
  assert.deepEqual(comments, [' hello']);
});

test('an event without data is not dispatched; the event name resets', () => {
  const got = [];
  const p = new SSEParser((e, d) => got.push([e, d]));
  p.push('event: snapshot\n\ndata: 1\n\n');
  assert.deepEqual(got, [['message', '1']]);
});
