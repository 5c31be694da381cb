import { Transform, type TransformCallback } from 'node:stream'
import StreamSearch from 'streamsearch'

// A part's header block ends at its first empty line; anything longer is not a header we rewrite.
const maxHeaderBytes = 16 * 1024
const attachment = /(^|\r\n)(content-disposition:[ \t]*)attachment[ \t]*(?=;|\r\n|$)/gi

/**
 * flat-manager-client (Python) sends each object as a part with `Content-Disposition: attachment;
 * filename=<name>` (no `form-data`, no field name). busboy, like most form parsers, skips such
 * parts without a word, and a build would then silently lack objects (flat-manager's own
 * "Couldn't find file object" bug). This stream rewrites, in part headers only, `attachment` to
 * `form-data; name="file"` on the way to the parser; bodies pass through untouched. Part
 * boundaries are found with streamsearch, as busboy finds them.
 */
export function acceptAttachmentParts(boundary: string): Transform {
  const delimiter = Buffer.from(`\r\n--${boundary}`)
  let inHeader = false
  let header: Buffer[] = []
  let headerBytes = 0
  // The first delimiter has no CRLF before it: one is fed in first and dropped from the output.
  let dropLeading = 2
  let output: Buffer[] = []

  const emit = (bytes: Buffer) => {
    if (dropLeading > 0) {
      const dropped = Math.min(dropLeading, bytes.length)
      dropLeading -= dropped
      bytes = bytes.subarray(dropped)
    }
    if (bytes.length) output.push(bytes)
  }
  const flushHeader = (rewrite: boolean) => {
    const block = Buffer.concat(header, headerBytes)
    header = []
    headerBytes = 0
    inHeader = false
    if (!rewrite) return emit(block)
    const end = block.indexOf('\r\n\r\n')
    const text = block.toString('latin1', 0, end)
    emit(attachment.test(text) ? Buffer.from(text.replace(attachment, '$1$2form-data; name="file"'), 'latin1') : block.subarray(0, end))
    attachment.lastIndex = 0
    emit(block.subarray(end))
  }
  const search = new StreamSearch(delimiter, (isMatch, data, start, end, isSafeData) => {
    if (data && end > start) {
      const bytes = isSafeData ? data.subarray(start, end) : Buffer.from(data.subarray(start, end))
      if (!inHeader) emit(bytes)
      else {
        header.push(bytes)
        headerBytes += bytes.length
        const block = Buffer.concat(header, headerBytes)
        header = [block]
        if (block.includes('\r\n\r\n')) flushHeader(true)
        else if (headerBytes > maxHeaderBytes) flushHeader(false)
      }
    }
    if (isMatch) {
      if (inHeader) flushHeader(false) // two delimiters without a header block: pass it on as it came
      emit(delimiter)
      inHeader = true
    }
  })
  search.push(Buffer.from('\r\n'))

  return new Transform({
    transform(chunk: Buffer, _encoding, callback: TransformCallback) {
      search.push(chunk)
      for (const bytes of output) this.push(bytes)
      output = []
      callback()
    },
    flush(callback: TransformCallback) {
      search.destroy()
      if (inHeader) flushHeader(false)
      for (const bytes of output) this.push(bytes)
      output = []
      callback()
    },
  })
}
