#!/usr/bin/env bash
# Records the header-codec test vectors in this folder from real traffic between two network
# namespaces (root required; needs iproute2, ethtool, tc, tcpdump, iperf3, a C++ compiler).
#
#   bash testdata/traces/record.sh            # re-records every trace into testdata/traces/
#   bash testdata/traces/record.sh OUTDIR     # ... into OUTDIR
#
# Topology: namespace ${P}c (client, 10.77.0.1, fd77::1) -- veth -- ${P}s (server, 10.77.0.2,
# fd77::2), with a per-run prefix P so parallel runs never collide; both namespaces and every
# process started here are removed on exit. Offloads (TSO/GSO/GRO, tx checksum) are off on both
# veths so packets are MTU-sized, as a TUN without offloads hands them out, except for the
# *_gso trace (offloads on: GSO super-packets, partial checksums on the sending side). The
# client's egress is shaped to 100 Mbit/s with tbf, so bulk transfers are ACK-clocked as on a
# WAN rather than running at memory speed.
#
# tcpdump captures on the client's veth; `hctraffic cut` (compiled from the source below) then
# keeps the first N IPv4/IPv6 packets as a LINKTYPE_RAW pcap with the IP and TCP/UDP headers only
# (each record's orig_len stays the real packet length). The unit test regenerates the payloads
# deterministically and recomputes the TCP/UDP checksums, so every header in a trace is real but
# the files stay small. Where a recorded checksum is the partial (pseudo-header) sum that the
# kernel leaves for the offload (the *_gso trace, both directions), the test keeps it partial and
# passes partial_checksum = true to the codec.
#
# Traces (both directions in one file; the test splits them by source address):
#   bulk_v4.pcap        iperf3 -t 1 TCP/IPv4 upload, first 1600 packets (data one way, ACKs back)
#   bulk_v4_gso.pcap    the same with offloads on, first 1000 packets (GSO super-packets)
#   rr_v4.pcap          HTTP-like request/response: 30 connections x 8 exchanges (requests of
#                       60..460 bytes, responses of 100..6100 bytes, 0..15 ms apart)
#   interactive_v4.pcap 240 keystrokes echoed one by one, 20..140 ms apart, a burst of "output"
#                       after every 12th ("Enter")
#   bulk_v6.pcap        iperf3 -t 1 TCP/IPv6 upload, first 1600 packets
#   udp_v4.pcap         VoIP-like UDP/IPv4 stream: 172-byte datagrams every 2 ms, each answered
#                       (an empty datagram, every 5th a 172-byte one)
#   udp_v6.pcap         DNS-like UDP/IPv6 requests of 30..90 bytes, answers of 80..476 bytes
# Whatever else the namespaces send (IPv6 neighbour discovery, MLD) is kept: it exercises escapes.
set -euo pipefail

[ "$(id -u)" -eq 0 ] || { echo "record.sh: must run as root" >&2; exit 1; }
out=$(realpath "${1:-$(dirname "$0")}")
P=hc$$
C=${P}c
S=${P}s
work=$(mktemp -d /tmp/hcrec.XXXXXX)
pids=()

cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  ip netns del "$C" 2>/dev/null || true
  ip netns del "$S" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

cat >"$work/hctraffic.cpp" <<'EOF'
// hctraffic: traffic generators and servers for record.sh, plus the pcap cutter.
//   hctraffic server                       TCP 7001 (request/response), 7002 (echo), UDP 7003
//   hctraffic rr HOST CONNS EXCHANGES      request/response client
//   hctraffic keys HOST COUNT              interactive client
//   hctraffic voip HOST COUNT              UDP stream client (every 2 ms) with echoed replies
//   hctraffic dns HOST COUNT               UDP request/response client
//   hctraffic cut IN OUT MAX               Ethernet pcap -> LINKTYPE_RAW pcap of headers only
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

static void die(const char* what) { perror(what); std::exit(1); }

static bool read_all(int fd, void* buf, size_t n) {
  auto* p = static_cast<char*>(buf);
  while (n) {
    ssize_t r = read(fd, p, n);
    if (r <= 0) return false;
    p += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}
static bool write_all(int fd, const void* buf, size_t n) {
  auto* p = static_cast<const char*>(buf);
  while (n) {
    ssize_t r = write(fd, p, n);
    if (r <= 0) return false;
    p += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}

static int listen_on(int type, int port) {
  int fd = socket(AF_INET6, type, 0);
  if (fd < 0) die("socket");
  int zero = 0, one = 1;
  setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  a.sin6_port = htons(static_cast<uint16_t>(port));
  a.sin6_addr = in6addr_any;
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) < 0) die("bind");
  if (type == SOCK_STREAM && listen(fd, 64) < 0) die("listen");
  return fd;
}

static int connect_to(const char* host, int type, int port) {
  addrinfo hints{}, *res = nullptr;
  hints.ai_socktype = type;
  hints.ai_flags = AI_NUMERICHOST;
  if (getaddrinfo(host, std::to_string(port).c_str(), &hints, &res) != 0) die("getaddrinfo");
  int fd = socket(res->ai_family, type, 0);
  if (fd < 0 || connect(fd, res->ai_addr, res->ai_addrlen) < 0) die("connect");
  freeaddrinfo(res);
  return fd;
}

// Request/response: each request is [u32 response size][u32 request size][filler].
static void serve_rr(int c) {
  std::vector<char> buf(1 << 20, 'r');
  uint32_t hdr[2];
  while (read_all(c, hdr, 8)) {
    uint32_t resp = ntohl(hdr[0]), req = ntohl(hdr[1]);
    if (resp > buf.size() || req < 8 || req - 8 > buf.size()) break;
    if (!read_all(c, buf.data(), req - 8) || !write_all(c, buf.data(), resp)) break;
  }
  close(c);
}

// Echo every byte; after '\r' send a line of "output" of the size given by the next byte * 8.
static void serve_echo(int c) {
  char ch;
  std::string out(4096, 'o');
  while (read_all(c, &ch, 1)) {
    if (!write_all(c, &ch, 1)) break;
    if (ch == '\r') {
      unsigned char n;
      if (!read_all(c, &n, 1) || !write_all(c, out.data(), n * 8u)) break;
    }
  }
  close(c);
}

static int server() {
  int rr = listen_on(SOCK_STREAM, 7001), echo = listen_on(SOCK_STREAM, 7002);
  int udp = listen_on(SOCK_DGRAM, 7003);
  pollfd fds[3] = {{rr, POLLIN, 0}, {echo, POLLIN, 0}, {udp, POLLIN, 0}};
  std::vector<char> buf(65536);
  for (;;) {
    if (poll(fds, 3, -1) < 0) die("poll");
    if (fds[0].revents) std::thread(serve_rr, accept(rr, nullptr, nullptr)).detach();
    if (fds[1].revents) std::thread(serve_echo, accept(echo, nullptr, nullptr)).detach();
    if (fds[2].revents) {
      sockaddr_storage from{};
      socklen_t len = sizeof from;
      ssize_t n = recvfrom(udp, buf.data(), buf.size(), 0, reinterpret_cast<sockaddr*>(&from), &len);
      // Replies: the first byte of the datagram says how many bytes (x 4) to send back.
      if (n > 0) sendto(udp, buf.data(), static_cast<unsigned char>(buf[0]) * 4u, 0,
                        reinterpret_cast<sockaddr*>(&from), len);
    }
  }
}

static void pause_ms(int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

static int rr_client(const char* host, int conns, int exchanges) {
  std::mt19937 rng(1);
  std::vector<char> buf(1 << 20, 'q');
  for (int i = 0; i < conns; ++i) {
    int fd = connect_to(host, SOCK_STREAM, 7001);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    for (int j = 0; j < exchanges; ++j) {
      uint32_t req = 60 + rng() % 400, resp = 100 + rng() % 6000;
      uint32_t hdr[2] = {htonl(resp), htonl(req)};
      std::memcpy(buf.data(), hdr, 8);
      if (!write_all(fd, buf.data(), req) || !read_all(fd, buf.data(), resp)) die("rr");
      pause_ms(static_cast<int>(rng() % 15));
    }
    close(fd);
  }
  return 0;
}

static int keys_client(const char* host, int count) {
  std::mt19937 rng(2);
  int fd = connect_to(host, SOCK_STREAM, 7002);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  std::vector<char> buf(4096);
  for (int i = 0; i < count; ++i) {
    bool enter = i % 12 == 11;
    char ch = enter ? '\r' : static_cast<char>('a' + rng() % 26);
    if (!write_all(fd, &ch, 1) || !read_all(fd, buf.data(), 1)) die("keys");
    if (enter) {
      unsigned char n = static_cast<unsigned char>(4 + rng() % 200);
      if (!write_all(fd, &n, 1) || !read_all(fd, buf.data(), n * 8u)) die("keys output");
    }
    pause_ms(20 + static_cast<int>(rng() % 120));  // typing speed
  }
  close(fd);
  return 0;
}

static int udp_client(const char* host, int count, bool voip) {
  std::mt19937 rng(3);
  int fd = connect_to(host, SOCK_DGRAM, 7003);
  std::vector<char> buf(2048, 'u');
  for (int i = 0; i < count; ++i) {
    size_t n = voip ? 172 : 30 + rng() % 60;
    buf[0] = static_cast<char>(voip ? (i % 5 == 0 ? 43 : 0) : 20 + rng() % 100);
    if (send(fd, buf.data(), n, 0) < 0) die("send");
    if (buf[0] != 0) {
      pollfd p{fd, POLLIN, 0};
      if (poll(&p, 1, 1000) == 1) (void)recv(fd, buf.data() + 1024, 1024, 0);
      buf[0] = 'u';
    }
    pause_ms(voip ? 2 : 5 + static_cast<int>(rng() % 20));
  }
  return 0;
}

// Reads an Ethernet pcap, writes a LINKTYPE_RAW pcap of at most max IPv4/IPv6 packets, each
// cut after its TCP/UDP header (other packets: after at most 128 bytes), orig_len kept.
static int cut(const char* in, const char* out, size_t max) {
  FILE* f = fopen(in, "rb");
  FILE* o = fopen(out, "wb");
  if (!f || !o) die("fopen");
  uint32_t gh[6];
  if (fread(gh, 4, 6, f) != 6 || gh[0] != 0xa1b2c3d4 || gh[5] != 1) {
    fprintf(stderr, "cut: not a little-endian Ethernet pcap\n");
    return 1;
  }
  gh[4] = 65535;
  gh[5] = 101;  // LINKTYPE_RAW
  fwrite(gh, 4, 6, o);
  std::vector<uint8_t> p(262144);
  uint32_t rh[4];
  size_t kept = 0;
  while (kept < max && fread(rh, 4, 4, f) == 4) {
    if (rh[2] > p.size() || fread(p.data(), 1, rh[2], f) != rh[2]) break;
    if (rh[2] < 14 + 20) continue;
    uint16_t type = static_cast<uint16_t>(p[12] << 8 | p[13]);
    const uint8_t* ip = p.data() + 14;
    size_t cap = rh[2] - 14, len = rh[3] - 14, keep = std::min<size_t>(cap, 128);
    size_t l3 = 0;
    uint8_t proto = 0;
    if (type == 0x0800 && (ip[0] >> 4) == 4) {
      l3 = (ip[0] & 15) * 4u;
      proto = (ip[6] & 0x3f) || ip[7] ? 0 : ip[9];  // fragments: no L4 header to keep
    } else if (type == 0x86dd && (ip[0] >> 4) == 6) {
      l3 = 40;
      proto = ip[6];
    } else {
      continue;
    }
    if (proto == IPPROTO_TCP && cap >= l3 + 13) keep = l3 + (ip[l3 + 12] >> 4) * 4u;
    if (proto == IPPROTO_UDP) keep = l3 + 8;
    keep = std::min(keep, cap);
    uint32_t orh[4] = {rh[0], rh[1], static_cast<uint32_t>(keep), static_cast<uint32_t>(len)};
    fwrite(orh, 4, 4, o);
    fwrite(ip, 1, keep, o);
    ++kept;
  }
  fclose(f);
  fclose(o);
  fprintf(stderr, "cut: %s: %zu packets\n", out, kept);
  return 0;
}

int main(int argc, char** argv) {
  std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "server") return server();
  if (mode == "rr" && argc == 5) return rr_client(argv[2], atoi(argv[3]), atoi(argv[4]));
  if (mode == "keys" && argc == 4) return keys_client(argv[2], atoi(argv[3]));
  if (mode == "voip" && argc == 4) return udp_client(argv[2], atoi(argv[3]), true);
  if (mode == "dns" && argc == 4) return udp_client(argv[2], atoi(argv[3]), false);
  if (mode == "cut" && argc == 5) return cut(argv[2], argv[3], strtoul(argv[4], nullptr, 10));
  fprintf(stderr, "usage: see the comment at the top\n");
  return 2;
}
EOF
c++ -O2 -std=c++20 -pthread -o "$work/hctraffic" "$work/hctraffic.cpp"
T=$work/hctraffic

ip netns add "$C"
ip netns add "$S"
ip link add "${P}a" netns "$C" type veth peer name "${P}b" netns "$S"
ip -n "$C" addr add 10.77.0.1/24 dev "${P}a"
ip -n "$S" addr add 10.77.0.2/24 dev "${P}b"
ip -n "$C" addr add fd77::1/64 dev "${P}a" nodad
ip -n "$S" addr add fd77::2/64 dev "${P}b" nodad
for ns in "$C" "$S"; do ip -n "$ns" link set lo up; done
ip -n "$C" link set "${P}a" up
ip -n "$S" link set "${P}b" up
ip netns exec "$C" tc qdisc add dev "${P}a" root tbf rate 100mbit burst 32k latency 20ms

offloads() {  # on|off
  ip netns exec "$C" ethtool -K "${P}a" tso "$1" gso "$1" gro "$1" tx "$1" >/dev/null 2>&1 || true
  ip netns exec "$S" ethtool -K "${P}b" tso "$1" gso "$1" gro "$1" tx "$1" >/dev/null 2>&1 || true
}

ip netns exec "$S" "$T" server &
pids+=($!)
ip netns exec "$S" iperf3 -s -p 5201 >/dev/null 2>&1 &
pids+=($!)
sleep 1
ip netns exec "$C" ping -c 1 -W 2 10.77.0.2 >/dev/null
ip netns exec "$C" ping -c 1 -W 2 fd77::2 >/dev/null

# record NAME MAXPACKETS COMMAND...: captures while COMMAND runs in the client namespace.
record() {
  local name=$1 max=$2
  shift 2
  ip netns exec "$C" tcpdump -i "${P}a" -s 200 -B 32768 -w "$work/$name.raw.pcap" \
    'ip or ip6' 2>"$work/$name.log" &
  local dump=$!
  sleep 1
  ip netns exec "$C" "$@" >/dev/null
  sleep 0.5
  kill -INT "$dump"
  wait "$dump" || true
  grep -h 'captured\|dropped' "$work/$name.log" >&2 || true
  "$T" cut "$work/$name.raw.pcap" "$out/$name.pcap" "$max"
}

offloads off
record bulk_v4 1600 timeout 60 iperf3 -c 10.77.0.2 -p 5201 -t 1
record rr_v4 3000 timeout 60 "$T" rr 10.77.0.2 30 8
record interactive_v4 2000 timeout 120 "$T" keys 10.77.0.2 240
record bulk_v6 1600 timeout 60 iperf3 -6 -c fd77::2 -p 5201 -t 1
record udp_v4 2000 timeout 60 "$T" voip 10.77.0.2 1000
record udp_v6 1000 timeout 60 "$T" dns fd77::2 300
offloads on
record bulk_v4_gso 1000 timeout 60 iperf3 -c 10.77.0.2 -p 5201 -t 1
ls -l "$out"/*.pcap
