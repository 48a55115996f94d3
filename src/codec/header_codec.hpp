#pragma once
// hc: header compression for the IP packets of tunneled flows. Pure code: no I/O, no logging, no
// allocation per packet (contexts are allocated when a flow first appears).
//
// The channel: every flow's messages travel on ONE ordered, reliable SCTP stream of one
// association, several flows may share a stream, and when the association is lost or restarted
// both sides drop their contexts (reset()). So a delta against the previous packet of the same
// context is safe, with no CRC or feedback machinery. One Compressor per (association, stream) on
// the sending side, one Decompressor per (association, stream) on the receiving side; EVERY
// message of that stream must pass through decode() in order (a message dropped before decode()
// would leave the two sides' contexts out of step: reset both).
//
// The compressed forms (the first byte tells which; integers big-endian; "varint" is LEB128:
// 7 bits per byte, low group first, high bit = more follows, canonical, at most 5 bytes for 32
// bits; "zigzag" maps a signed delta to an unsigned one, 0,-1,1,-2 -> 0,1,2,3):
//
//  ESCAPE      0x00, then the whole original packet unchanged. Anything the codec does not
//              compress: not TCP/UDP over IPv4/IPv6, IPv4 options or fragments, IPv6 extension
//              headers, lengths that disagree with the packet, a wrong or unverifiable checksum,
//              an `out` buffer that is too small. Does not touch any context.
//  FULL        0x01 (checksum complete) | 0x02 (partial: the L4 checksum field holds the
//              pseudo-header sum, virtio NEEDS_CSUM) | 0x03 (UDP checksum 0, "none"), then
//              cid (varint < kMaxContexts), then the original IP + TCP/UDP header, unchanged.
//              (Re)starts context cid from that header; the decompressor verifies the lengths and
//              checksums of what it gets.
//  DIFF        0x04 | 0x05 | 0x06 (checksum complete / partial / none, as FULL), then cid,
//              base cid (varints), header length n (1 byte, <= 100), a bitmap of ceil(n / 8)
//              bytes (bit 7 of byte 0 = header byte 0) marking the header bytes that differ
//              from the base context's FIRST header (missing bytes count as 0), then those
//              bytes. Lengths and checksums are zero in both and recomputed. (Re)starts context
//              cid like FULL: the compressor uses it for a new flow when the last flow between
//              the same addresses is still known (a new connection to the same server) and DIFF
//              is smaller than FULL.
//  TCP         1 C X P A W V R   [cid varint if C, else the context of the previous FULL/TCP/UDP
//              message on this stream]
//              [ext byte if X:  0x01 SEQ, 0x02 ID, 0x04 FLAGS, 0x08 URG, 0x10 OPTS, 0x20 IPF]
//              [IPF byte if IPF, then its values in bit order: 0x01 TOS / traffic class (1),
//               0x02 TTL / hop limit (1), 0x04 IPv4 flags byte (1, DF / reserved bit only) or
//               IPv6 flow label (3), 0x08 TCP reserved bits + AE (1, 0..15),
//               0x10 checksum mode (1: 0 complete, 1 partial, 2 none (UDP only))]
//              [flags byte if FLAGS (PSH clear: PSH always comes from P)]
//              [options template if OPTS: one byte 0..40 (a multiple of 4) followed by that many
//               option bytes with the timestamp values and SACK blocks zeroed, or a well-known
//               layout 0x80 NOP NOP TS, 0x81..0x83 NOP NOP TS NOP NOP SACK(1..3 blocks),
//               0x84..0x87 NOP NOP SACK(1..4 blocks)]
//              [seq: zigzag varint of seq - (previous seq + previous payload + SYN + FIN) if SEQ]
//              [ack: varint of ack - previous ack if A, 0 meaning the same step as the
//               last ack change of the context] [window: zigzag varint delta if W]
//              [IPv4 ID: varint of ID - previous ID if ID (else ID = previous + previous delta)]
//              [urgent pointer (2) if URG] [TSval delta varint if V]
//              [TSecr delta varint if R, 0 meaning the same as this packet's TSval delta]
//              [each SACK block: varint start - ack, varint end - start]
//              P is the PSH flag. Everything not mentioned is as in the previous packet of the
//              context; lengths and checksums are always recomputed. A field is present only
//              when it changed (TOS/ECN, TTL, DF, flow label changes travel as IPF values rather
//              than escapes); the decompressor refuses a "change" to the same value, a zero
//              delta, a non-canonical varint or a reserved bit, so that more garbage is caught.
//  UDP         0 1 C F I 0 0 0   [cid varint if C] [IPF byte and values if F (as above, no 0x08)]
//              [IPv4 ID delta varint if I]
//  0x07..0x3f, 0x40..0x7f with any of the low three bits set: invalid.
//
// The compressor never emits a compressed form larger than the FULL form of the same packet, so
// written <= header_len + kMaxExpansion always (escape: written = 1, header_len = 0).

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <unordered_map>
#include <vector>

#include "src/base/packet.hpp"

namespace codec {

// encode() needs this much room in `out` (it escapes otherwise).
inline constexpr std::size_t kMaxEncodedSize = 128;
// decode() needs this much room in `out_header` (IPv4 60 + TCP 60; IPv6 40 + TCP 60).
inline constexpr std::size_t kMaxHeaderSize = 120;
// written - header_len is at most this much: room to leave in front of the payload.
inline constexpr std::size_t kMaxExpansion = 3;
// Context ids are 0 .. kMaxContexts - 1 (a varint of at most 2 bytes).
inline constexpr std::size_t kMaxContexts = 16384;

// escape: the packet travels whole; full: a context (re)started (FULL or DIFF form);
// compressed: a TCP or UDP compressed form.
enum class Form : std::uint8_t { escape, full, compressed };

struct Encoded {
  std::size_t written = 0;     // bytes of out to send
  std::size_t header_len = 0;  // then send packet[header_len..]
  Form form = Form::escape;
};

struct Stats {
  std::uint64_t packets = 0;
  // Sum of the original IP + TCP/UDP header lengths (for escapes: as far as they can be parsed).
  std::uint64_t inner_header_bytes = 0;
  // What replaced them on the wire: written - header_len + the inner header length, i.e. for a
  // compressed/FULL packet `written`, for an escape 1 + the header it carries unchanged.
  std::uint64_t compressed_header_bytes = 0;
  std::uint64_t full = 0, compressed = 0, escaped = 0;
  std::uint64_t full_diff = 0;  // contexts started with DIFF rather than FULL (Form::full too)
  std::uint64_t evicted = 0;    // contexts reused for another flow (least recently used first)
};

enum class Error : std::uint8_t {
  none,
  empty,            // no bytes at all
  truncated,        // the message ends inside the compressed header
  unknown_form,     // a first byte no form uses
  bad_field,        // a reserved bit set, a value out of range, a non-canonical varint
  unknown_context,  // a context (or DIFF base) never set up, or dropped by reset()
  wrong_context,    // a TCP form for a UDP context or vice versa
  bad_full_header,  // FULL/DIFF: a header the compressor would not send (lengths, checksums)
  too_long,         // the rebuilt packet would exceed the IP length field
  no_room,          // out_header is too small
};
const char* to_string(Error error);

struct Decoded {
  std::size_t header_len = 0;  // the original packet is out_header[0, header_len)
  std::size_t consumed = 0;    // followed by msg[consumed, end)
  Form form = Form::escape;
};

struct DecompressorStats {
  std::uint64_t packets = 0, full = 0, compressed = 0, escaped = 0, errors = 0;
};

// The per-flow state the classes below hold by value (so it is declared here); the rest of the
// codec's internals are in header_codec_detail.hpp. Not for callers.
namespace detail {
inline constexpr std::uint8_t kNone = 0xff;
enum CsumMode : std::uint8_t { kCsumComplete = 0, kCsumPartial = 1, kCsumNone = 2 };

// Where the dynamic fields of a TCP option block are: the first timestamp option's values and
// the first SACK option's blocks. Everything else in the options is static (the "template").
struct OptLayout {
  std::uint8_t len = 0;  // bytes of options (0..40)
  std::uint8_t ts = kNone;
  std::uint8_t sack = kNone;
  std::uint8_t sack_blocks = 0;
  bool operator==(const OptLayout&) const = default;
};

// The state both sides keep per flow: the previous packet's header and what is derived from it.
struct Context {
  std::array<std::uint8_t, 100> hdr{};  // IP header (20 / 40) then TCP (20..60) / UDP (8) header
  std::uint8_t ip_len = 0, l4_len = 0, version = 0, proto = 0;
  std::uint8_t mode = kCsumComplete;
  bool live = false;
  std::uint16_t id_delta = 1;          // the last IPv4 ID step
  std::uint32_t next_seq = 0;          // TCP: seq + payload + SYN + FIN of the previous packet
  std::uint32_t ack_delta = 0;         // TCP: the last non-zero ack step
  std::uint32_t tsval = 0, tsecr = 0;  // the last timestamps seen (kept across packets without)
  OptLayout opts;
  // The header that (re)started the context, lengths and checksums zeroed: the base of a later
  // flow's DIFF form.
  std::array<std::uint8_t, 100> first{};
  std::uint8_t first_len = 0;
};

}  // namespace detail

// The sending side of one (association, stream).
class Compressor {
 public:
  // max_contexts: flows remembered at once (1 .. kMaxContexts); beyond, the least recently used
  // context is reused for the new flow.
  explicit Compressor(std::size_t max_contexts = 1024);

  // Encodes the header of `packet` (one whole IPv4/IPv6 packet as read from the TUN, exactly
  // total-length bytes; a GSO super-packet counts as one packet with a long payload) into `out`
  // (at least kMaxEncodedSize bytes; never fails: with less room it escapes, with none it writes
  // nothing). The message to send is out[0, written) followed by packet[header_len, end).
  // partial_checksum: the TCP/UDP checksum field holds only the pseudo-header sum (virtio
  // NEEDS_CSUM); the decompressor then rebuilds that same partial value.
  Encoded encode(std::span<const std::uint8_t> packet, std::span<std::uint8_t> out,
                 bool partial_checksum = false);

  // Undoes the last encode() whose message could not be sent (e.g. the send buffer was full):
  // the contexts are as before it, so the packet can be encoded again when there is room and
  // the far side never knows. Only the last encode() can be undone, and only once; a no-op
  // otherwise. (The statistics forget it too.)
  void rollback();

  // Forgets the flow's context, if any (only frees memory: the far side needs no notice).
  bool forget(const base::packet::FlowKey& key);
  // Forgets every context: call when the association or stream starts anew (the far side's
  // Decompressor is reset at the same time).
  void reset();

  const Stats& stats() const { return stats_; }
  std::size_t contexts() const { return index_.size(); }

 private:
  struct Slot {
    detail::Context ctx;
    base::packet::FlowKey key;
    std::uint16_t prev = kNil, next = kNil;  // LRU list, most recent at head_
  };
  static constexpr std::uint16_t kNil = 0xffff;

  Encoded escape(std::span<const std::uint8_t> packet, std::span<std::uint8_t> out);
  void unlink(std::uint16_t cid);
  void push_front(std::uint16_t cid);
  std::uint16_t allocate(const base::packet::FlowKey& key);

  std::size_t max_contexts_;
  std::vector<Slot> slots_;
  std::vector<std::uint16_t> free_;
  std::unordered_map<base::packet::FlowKey, std::uint16_t> index_;
  // The latest context per (version, protocol, addresses), ports 0: the base of DIFF forms.
  std::unordered_map<base::packet::FlowKey, std::uint16_t> by_addresses_;
  std::uint16_t head_ = kNil, tail_ = kNil;
  int last_cid_ = -1;  // the context of the last FULL / compressed message sent
  Stats stats_;
  // What rollback() restores besides the statistics: the context undo_cid_ as it was, or
  // undoes its creation.
  enum class Undo : std::uint8_t { none, stats, restore, created };
  Undo undo_ = Undo::none;
  std::uint16_t undo_cid_ = 0;
  int undo_last_cid_ = -1;
  detail::Context undo_ctx_;
  Stats undo_stats_;
};

// The receiving side of one (association, stream).
class Decompressor {
 public:
  // Context memory is the peer's to spend, so it is bounded: context ids below max_contexts
  // (the Compressor's own default), and, with a budget, the contexts of all decompressors sharing
  // it together (one budget per association). A FULL/DIFF beyond either bound is refused
  // (Error::no_room), which resets the stream's contexts like any other error.
  explicit Decompressor(std::size_t max_contexts = 1024, std::size_t* budget = nullptr)
      : max_contexts_(max_contexts), budget_(budget) {}
  ~Decompressor() { reset(); }
  // A copy (tests probe with them) has the same contexts but no budget.
  Decompressor(const Decompressor& other)
      : max_contexts_(other.max_contexts_),
        budget_(nullptr),
        contexts_(other.contexts_),
        last_cid_(other.last_cid_),
        stats_(other.stats_) {}
  Decompressor& operator=(const Decompressor&) = delete;
  // Rebuilds the original header from the front of msg (the whole message after the wire type
  // byte: compressed header then payload) into out_header (kMaxHeaderSize bytes suffice). On
  // success the original packet is out_header[0, header_len) + msg[consumed, end), byte for
  // byte as it entered the far side's TUN, with IP lengths and TCP/UDP and IPv4 header
  // checksums recomputed. On error nothing changes (the message is to be dropped); arbitrary
  // input never reads or writes out of bounds.
  Error decode(std::span<const std::uint8_t> msg, std::span<std::uint8_t> out_header, Decoded& out);
  void reset();
  const DecompressorStats& stats() const { return stats_; }

 private:
  Error decode_one(std::span<const std::uint8_t> msg, std::span<std::uint8_t> out_header,
                   Decoded& out);

  // Grows contexts_ to hold cid, within max_contexts_ and the budget.
  bool make_room(std::uint32_t cid);

  std::size_t max_contexts_;
  std::size_t* budget_;  // contexts the association may still allocate; null: unbounded
  std::vector<detail::Context> contexts_;  // indexed by cid, grown on demand
  int last_cid_ = -1;
  DecompressorStats stats_;
};

}  // namespace codec
