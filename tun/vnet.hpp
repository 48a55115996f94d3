#pragma once
// tun::VnetHdr: the legacy 10-byte virtio_net_hdr that a TUN opened with IFF_VNET_HDR puts in
// front of every packet it hands out and expects in front of every packet written to it
// (linux/virtio_net.h, which does not compile as C++, hence our own definition).
//
// Byte order: the host's (the legacy header is "guest-native"; we never set TUNSETVNETLE/BE),
// so little-endian on x86. Fields, as the kernel fills them on read:
//  - flags: kNeedsCsum when the L4 checksum is partial: the 16-bit field at
//    csum_start + csum_offset holds only the pseudo-header sum (not complemented), and the
//    checksum over [csum_start, end) remains to be folded in (see tun::gso::complete_checksum).
//    kDataValid (only meaningful when writing to the TUN): the checksum need not be verified.
//  - gso_type: kGsoNone for an ordinary packet, else kGsoTcpV4 / kGsoTcpV6 / kGsoUdp for a GSO
//    super-packet (one IP + L4 header, payload up to 64 KB) that stands for several packets of
//    gso_size payload bytes each (the last may be shorter); kGsoUdp (UFO) and kGsoUdpL4 (USO)
//    only come with TUN_F_UFO / TUN_F_USO*, which we do not enable; kGsoEcn may be OR-ed in (the
//    TCP header carries CWR, which belongs on the first segment only).
//  - hdr_len: a hint only. Linux sets it to the length of the skb's linear part, which is usually
//    the IP + L4 headers but on the forwarding path can be the whole first segment.
//  - gso_size: the payload bytes per segment (the MSS for TCP).

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <type_traits>

namespace tun {

inline constexpr std::size_t kVnetHdrSize = 10;

// Bounds on a GSO super-packet that we accept (tun::gso::vnet_hdr_matches): gso_size at least
// kMinGsoSize, so that one super-packet of at most 64 KB stands for at most kMaxGsoSegments
// segments (ceil(65535 / 64) = 1024).
inline constexpr std::size_t kMinGsoSize = 64;
inline constexpr std::size_t kMaxGsoSegments = 1024;

struct VnetHdr {
  // flags
  static constexpr std::uint8_t kNeedsCsum = 1;  // VIRTIO_NET_HDR_F_NEEDS_CSUM
  static constexpr std::uint8_t kDataValid = 2;  // VIRTIO_NET_HDR_F_DATA_VALID
  static constexpr std::uint8_t kKnownFlags = kNeedsCsum | kDataValid;  // what a TUN hands out
  // gso_type
  static constexpr std::uint8_t kGsoNone = 0;    // VIRTIO_NET_HDR_GSO_NONE
  static constexpr std::uint8_t kGsoTcpV4 = 1;   // VIRTIO_NET_HDR_GSO_TCPV4
  static constexpr std::uint8_t kGsoUdp = 3;     // VIRTIO_NET_HDR_GSO_UDP (UFO, obsolete)
  static constexpr std::uint8_t kGsoTcpV6 = 4;   // VIRTIO_NET_HDR_GSO_TCPV6
  static constexpr std::uint8_t kGsoUdpL4 = 5;   // VIRTIO_NET_HDR_GSO_UDP_L4 (USO)
  static constexpr std::uint8_t kGsoEcn = 0x80;  // VIRTIO_NET_HDR_GSO_ECN, OR-ed into the type

  std::uint8_t flags = 0;
  std::uint8_t gso_type = kGsoNone;
  std::uint16_t hdr_len = 0;
  std::uint16_t gso_size = 0;
  std::uint16_t csum_start = 0;
  std::uint16_t csum_offset = 0;

  // The header at the front of bytes, or nullopt when bytes is shorter than kVnetHdrSize.
  // Nothing is validated beyond the size.
  static std::optional<VnetHdr> load(std::span<const std::uint8_t> bytes) {
    if (bytes.size() < kVnetHdrSize) return std::nullopt;
    VnetHdr h;
    std::memcpy(&h, bytes.data(), kVnetHdrSize);
    return h;
  }
  // Writes the header into the first kVnetHdrSize bytes of out.
  // Precondition: out.size() >= kVnetHdrSize.
  void store(std::span<std::uint8_t> out) const { std::memcpy(out.data(), this, kVnetHdrSize); }

  // The GSO type without the ECN bit.
  std::uint8_t gso_kind() const { return static_cast<std::uint8_t>(gso_type & ~kGsoEcn); }
  // True for an ordinary, fully checksummed packet: no GSO (gso_type exactly kGsoNone) and no
  // partial checksum. Such a packet may be used as is, without the header.
  bool is_plain() const { return gso_type == kGsoNone && (flags & kNeedsCsum) == 0; }

  bool operator==(const VnetHdr&) const = default;
};

static_assert(sizeof(VnetHdr) == kVnetHdrSize, "the legacy virtio_net_hdr is 10 bytes");
static_assert(std::is_trivially_copyable_v<VnetHdr> && std::is_standard_layout_v<VnetHdr>);
static_assert(offsetof(VnetHdr, hdr_len) == 2 && offsetof(VnetHdr, csum_offset) == 8);

}  // namespace tun
