// The only file that calls zlib. Two thin wrappers, each a final class owning one heap-allocated
// z_stream (zlib keeps a back-pointer to it, so it must never move) and ending it in deinit.
//
// Both speak raw DEFLATE (negative windowBits: no zlib header or checksum), as RFC 7692 §7.2
// requires, and flush with Z_SYNC_FLUSH so every message ends on a byte boundary with the
// empty stored block 00 00 FF FF, which the sender strips and the receiver puts back.
//
// Memory (zlib's zconf.h formulas): a deflater needs (1 << (windowBits + 2)) + (1 << (memLevel + 9))
// bytes plus ~6 KiB of state: 256 KiB for windowBits 15 / memLevel 8. An inflater needs
// 1 << windowBits bytes of window (allocated on first use) plus ~7 KiB: 39 KiB for 15 bits.
// That is why the reader and writer create these lazily and drop them whenever no context
// takeover lets them (see WebSocketReader and WebSocketWriter).

import CHubShims
import CZlib

/// Errors zlib reports. Not public: the reader maps them to close codes.
enum ZlibError: Error, Equatable {
    /// The input is not valid DEFLATE data (Z_DATA_ERROR, Z_NEED_DICT).
    case invalidData
    /// zlib could not allocate its state (Z_MEM_ERROR) or refused the parameters.
    case initializationFailed(Int32)
}

/// A raw-DEFLATE compressor for permessage-deflate (RFC 7692 §7.2.1).
final class ZlibDeflater {
    private let stream: UnsafeMutablePointer<z_stream>
    /// The window zlib actually uses: 9 when 8 was agreed. zlib's deflate refuses an 8-bit window
    /// for raw streams, but with a 9-bit (512-byte) window it never emits a match distance above
    /// 512 − MIN_LOOKAHEAD (262) = 250 bytes, so its output is decodable with a 256-byte window:
    /// using 9 honours an agreed server_max_window_bits=8.
    let effectiveWindowBits: Int

    /// - Parameters:
    ///   - windowBits: the agreed maximum window, 8...15.
    ///   - level: zlib compression level, 0...9.
    ///   - memLevel: zlib memLevel, 1...9 (8 = zlib's default).
    init(windowBits: Int, level: Int, memLevel: Int) throws {
        precondition((8...15).contains(windowBits) && (0...9).contains(level) && (1...9).contains(memLevel))
        effectiveWindowBits = max(windowBits, 9)
        let bits = effectiveWindowBits
        stream = try makeZStream { hub_z_deflateInit2($0, Int32(level), Z_DEFLATED, -Int32(bits), Int32(memLevel), Z_DEFAULT_STRATEGY) }
    }

    deinit { freeZStream(stream, end: deflateEnd) }

    /// Forgets the sliding window (no context takeover) without freeing the allocation.
    func reset() { deflateReset(stream) }

    /// Compresses `input` with Z_SYNC_FLUSH, appends the result to `out` and strips the
    /// trailing 00 00 FF FF (RFC 7692 §7.2.1). Returns the number of bytes appended.
    @discardableResult
    func compress(_ input: UnsafeRawBufferPointer, appendingTo out: inout [UInt8]) -> Int {
        let start = out.count
        stream.pointee.next_in = UnsafeMutablePointer(mutating: input.baseAddress?.assumingMemoryBound(to: Bytef.self))
        stream.pointee.avail_in = uInt(input.count)
        // deflateBound covers a Z_FINISH stream; a sync flush adds at most an empty stored block
        // (5 bytes) plus a partial byte, so one round almost always suffices.
        var room = Int(deflateBound(stream, uLong(input.count))) + 16
        while true {
            let before = out.count
            out.append(contentsOf: repeatElement(0, count: room))
            var rc: Int32 = Z_OK
            var left = 0
            out.withUnsafeMutableBytes { buffer in
                stream.pointee.next_out = (buffer.baseAddress! + before).assumingMemoryBound(to: Bytef.self)
                stream.pointee.avail_out = uInt(room)
                rc = deflate(stream, Z_SYNC_FLUSH)
                left = Int(stream.pointee.avail_out)
                stream.pointee.next_out = nil
            }
            out.removeLast(left)
            // Z_BUF_ERROR only means "no progress possible", which cannot happen with room > 0;
            // Z_STREAM_ERROR would be a bug in this wrapper.
            precondition(rc == Z_OK || rc == Z_BUF_ERROR, "deflate failed: \(rc)")
            // Output space left over means the flush completed and all input was consumed.
            if left > 0 { break }
            room = max(room, 4096)
        }
        stream.pointee.next_in = nil
        let produced = out.count - start
        // A sync flush always ends with the empty stored block; strip it.
        if produced >= 4, out[out.count - 4] == 0, out[out.count - 3] == 0, out[out.count - 2] == 0xFF,
           out[out.count - 1] == 0xFF {
            out.removeLast(4)
        }
        return out.count - start
    }
}

/// A raw-DEFLATE decompressor for permessage-deflate (RFC 7692 §7.2.2) with bounded output.
///
/// Window enforcement is zlib's, and zlib checks a match distance against its window *plus the
/// output of the current inflate() call*. So a peer that reaches further back than its agreed
/// window (a protocol violation) is refused with 1007 when the reference crosses a read
/// boundary and may be decoded when it does not. Either way only zlib's own memory is read and
/// compliant peers are unaffected; it is the one place where the reader's verdict on invalid
/// input can depend on how it was split (fuzz/ws-inflate checks split invariance at 15 bits,
/// where it cannot happen).
final class ZlibInflater {
    private let stream: UnsafeMutablePointer<z_stream>

    /// Result of feeding compressed bytes.
    enum Outcome: Equatable {
        /// All input consumed, output within the limit.
        case consumed
        /// A block with BFINAL set ended the DEFLATE stream; input after it was ignored.
        case streamEnd
        /// The output would exceed the limit; `out` holds at most limit + 1 bytes.
        case limitExceeded
    }

    /// - Parameter windowBits: the peer's agreed maximum window, 8...15. zlib 1.2.9+ rejects 8
    ///   for raw inflate on some versions; a larger window is always safe for decoding, so 8 is
    ///   raised to 9.
    init(windowBits: Int) throws {
        precondition((8...15).contains(windowBits))
        stream = try makeZStream { hub_z_inflateInit2($0, -Int32(max(windowBits, 9))) }
    }

    deinit { freeZStream(stream, end: inflateEnd) }

    /// Starts a new DEFLATE stream (after BFINAL, or without context takeover).
    func reset() { inflateReset(stream) }

    /// True when the last inflate call stopped between blocks, waiting for a block header
    /// (zlib sets 128 in data_type exactly then): where a message must end once the
    /// 00 00 FF FF tail has been inflated.
    var isAtBlockBoundary: Bool { stream.pointee.data_type & 128 != 0 }

    /// Inflates all of `input` (Z_SYNC_FLUSH), appending to `out` while `out.count` stays
    /// ≤ `limit`. Stops as soon as the limit is passed, so a deflate bomb costs at most
    /// limit + 1 bytes of output and the work to produce them.
    func inflate(_ input: UnsafeRawBufferPointer, appendingTo out: inout [UInt8], limit: Int) throws -> Outcome {
        guard input.count > 0 else { return .consumed }
        stream.pointee.next_in = UnsafeMutablePointer(mutating: input.baseAddress!.assumingMemoryBound(to: Bytef.self))
        stream.pointee.avail_in = uInt(input.count)
        defer { stream.pointee.next_in = nil }
        // Output room per round: what this input plausibly expands to (small pieces of a frame
        // get small rounds, so feeding one byte does not zero-fill kilobytes), doubling while
        // zlib keeps filling it, and never more than one byte past the limit: that byte is how
        // an oversized message is detected without inflating it.
        var round = min(256 * 1024, max(256, Int(stream.pointee.avail_in) * 4))
        while true {
            let allowance = limit - out.count + 1
            if allowance <= 0 { return .limitExceeded }
            let room = min(allowance, round)
            round = min(round * 2, 1 << 20)
            let before = out.count
            out.append(contentsOf: repeatElement(0, count: room))
            var rc: Int32 = Z_OK
            var left = 0
            out.withUnsafeMutableBytes { buffer in
                stream.pointee.next_out = (buffer.baseAddress! + before).assumingMemoryBound(to: Bytef.self)
                stream.pointee.avail_out = uInt(room)
                rc = CZlib.inflate(stream, Z_SYNC_FLUSH)
                left = Int(stream.pointee.avail_out)
                stream.pointee.next_out = nil
            }
            out.removeLast(left)
            if out.count > limit { return .limitExceeded }
            switch rc {
            case Z_STREAM_END:
                return .streamEnd
            case Z_OK, Z_BUF_ERROR:
                // Done when all input is consumed and zlib had output space to spare (so nothing
                // is pending inside it); otherwise go round with more room. Z_BUF_ERROR with input
                // left and room to spare cannot happen (zlib would have progressed).
                if stream.pointee.avail_in == 0 && left > 0 { return .consumed }
                if rc == Z_BUF_ERROR && left > 0 { return .consumed }
            case Z_DATA_ERROR, Z_NEED_DICT:
                throw ZlibError.invalidData
            default:
                throw ZlibError.initializationFailed(rc)
            }
        }
    }
}

/// Allocates a `z_stream` and runs zlib's initialiser on it; frees it again if that fails.
private func makeZStream(_ initialize: (UnsafeMutablePointer<z_stream>) -> Int32) throws -> UnsafeMutablePointer<z_stream> {
    let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
    stream.initialize(to: z_stream())
    let rc = initialize(stream)
    guard rc == Z_OK else {
        stream.deinitialize(count: 1)
        stream.deallocate()
        throw ZlibError.initializationFailed(rc)
    }
    return stream
}

/// Ends a stream with zlib's matching `*End` and frees it.
private func freeZStream(_ stream: UnsafeMutablePointer<z_stream>, end: (UnsafeMutablePointer<z_stream>?) -> Int32) {
    _ = end(stream)
    stream.deinitialize(count: 1)
    stream.deallocate()
}
