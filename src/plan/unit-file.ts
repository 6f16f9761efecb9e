/**
 * A unit file's text read a chunk at a time: a unit of generated INSERTs may be tens of
 * megabytes, and its statements are split and run as the text goes by (sql-unit.ts), so
 * only a chunk of it is held. The text is what load.ts reads whole: UTF-8, CRLF line endings
 * made LF, a BOM dropped; its checksum is load.ts's `checksum` of the same bytes.
 */
import { createHash } from 'node:crypto';
import { closeSync, openSync, readSync } from 'node:fs';
import { StringDecoder } from 'node:string_decoder';

const chunkBytes = 256 * 1024;

/** The file's text, chunk by chunk; `done` gets its checksum once the last chunk is read. */
export function* unitFileText(path: string, done: (checksum: string) => void = () => {}): Generator<string> {
  const fd = openSync(path, 'r');
  try {
    const bytes = Buffer.alloc(chunkBytes);
    const decoder = new StringDecoder('utf8');
    const hash = createHash('sha256');
    // A CR at a chunk's end may be half of a CRLF: it waits for the next chunk.
    let carried = '';
    let first = true;
    for (;;) {
      const read = readSync(fd, bytes, 0, chunkBytes, null);
      const decoded = read === 0 ? decoder.end() : decoder.write(bytes.subarray(0, read));
      let text = carried + decoded;
      carried = '';
      if (read > 0 && text.endsWith('\r')) {
        carried = '\r';
        text = text.slice(0, -1);
      }
      text = text.replace(/\r\n/g, '\n');
      hash.update(text);
      if (first && text.length > 0) {
        // A BOM is not SQL; the checksum keeps it, as load.ts's does.
        text = text.replace(/^\uFEFF/, '');
        first = false;
      }
      if (text.length > 0) yield text;
      if (read === 0) break;
    }
    done(hash.digest('hex'));
  } finally {
    closeSync(fd);
  }
}
