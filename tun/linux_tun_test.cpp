// LinuxTun and Netlink against the real kernel. The root test runs in a forked child inside a
// network namespace of its own, so the test process and the host's interfaces are untouched; the
// child reports through its exit code and a pipe carrying the first failed expectation.

#include <arpa/inet.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <doctest/doctest.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <functional>
#include <stdexcept>
#include <string>

#include "tun/linux_tun.hpp"
#include "tun/linux_tun_test_util.hpp"
#include "tun/netlink.hpp"

namespace {

using namespace tun::test_util;
constexpr const char* kDev = "sctptest0";

void expect(bool ok, const std::string& what) {
  if (!ok) throw std::runtime_error("expected: " + what);
}

// Asserts that f throws std::runtime_error whose text contains `needle`.
void expect_throws(const std::function<void()>& f, const std::string& needle) {
  try {
    f();
  } catch (const std::runtime_error& e) {
    expect(std::string(e.what()).find(needle) != std::string::npos,
           "an error mentioning \"" + needle + "\", got \"" + e.what() + "\"");
    return;
  }
  throw std::runtime_error("expected an exception mentioning \"" + needle + "\"");
}

// The interface's MTU and flags as ioctl(2) reports them, independent of libnl.
ifreq query_interface(unsigned long request) {
  Fd sock(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, kDev, IFNAMSIZ - 1);
  expect(::ioctl(sock.get(), request, &ifr) == 0, std::string("ioctl on ") + kDev);
  return ifr;
}

// Sends payload from an unbound UDP socket; returns errno (0 when sent).
int send_udp(const std::string& ip, std::uint16_t port, const std::string& payload) {
  const bool v6 = ip.find(':') != std::string::npos;
  Fd sock(::socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  const SockAddr to = SockAddr::parse(ip, port);
  const ssize_t sent = ::sendto(sock.get(), payload.data(), payload.size(), 0, to.get(), to.len);
  return sent < 0 ? errno : 0;
}

// Reads from the TUN until a packet satisfies `match` or 3 s pass; other traffic (IPv6
// router solicitations, MLD reports) is skipped.
bool tun_receives(tun::LinuxTun& dev, const std::function<bool(const Bytes&)>& match) {
  std::array<tun::PacketBuf, 8> bufs;
  for (int waited_ms = 0; waited_ms < 3000; waited_ms += 100) {
    pollfd pfd{dev.fd(), POLLIN, 0};
    ::poll(&pfd, 1, 100);
    const std::size_t n = dev.read(bufs);
    for (std::size_t i = 0; i < n; i++) {
      expect(bufs[i].headroom() == tun::PacketBuf::kHeadroom, "read() keeps the headroom");
      if (match(Bytes(bufs[i].data().begin(), bufs[i].data().end()))) return true;
    }
  }
  return false;
}

void check_errors_on_missing_device(tun::Netlink& nl) {
  expect_throws([&] { nl.set_mtu("nosuchdev0", 1400); }, "netlink: set mtu 1400 on nosuchdev0: ");
  expect_throws([&] { nl.add_route("nosuchdev0", "10.9.0.0/24"); }, "add route 10.9.0.0/24");
  nl.remove_route("nosuchdev0", "10.9.0.0/24");  // nothing to remove: fine
}

void scenario() {
  tun::Netlink nl;
  check_errors_on_missing_device(nl);

  {
    // With IFF_VNET_HDR, this kernel takes the TSO/checksum offloads.
    auto vnet = tun::LinuxTun::open("sctpvnet0", 1400, {.vnet_hdr = true});
    expect(vnet->vnet_hdr() && vnet->offloads(), "IFF_VNET_HDR with TUN_F_CSUM|TSO4|TSO6");
  }
  auto dev = tun::LinuxTun::open(kDev, 1380);
  expect(dev->name() == kDev && dev->mtu() == 1380, "name() and mtu() as opened");
  expect((::fcntl(dev->fd(), F_GETFL) & O_NONBLOCK) != 0, "O_NONBLOCK");
  expect((::fcntl(dev->fd(), F_GETFD) & FD_CLOEXEC) != 0, "FD_CLOEXEC");
  expect(query_interface(SIOCGIFMTU).ifr_mtu == 1380, "open() set the MTU");
  expect(nl.ifindex(kDev) == static_cast<int>(::if_nametoindex(kDev)), "ifindex");

  nl.set_mtu(kDev, 1280);
  expect(query_interface(SIOCGIFMTU).ifr_mtu == 1280, "Netlink::set_mtu(1280)");
  nl.set_mtu(kDev, 1380);
  expect(nl.link_info(kDev).mtu == 1380, "Netlink::set_mtu(1380)");
  expect_throws([&] { nl.set_mtu(kDev, 10); }, "netlink: set mtu 10 on sctptest0: ");
  expect(!nl.link_info(kDev).up, "link starts down");
  expect_throws([&] { nl.add_route(kDev, "10.9.0.0/24"); }, "dev sctptest0: interface is down");
  nl.set_up(kDev);
  expect(nl.link_info(kDev).up, "Netlink::set_up");
  expect((query_interface(SIOCGIFFLAGS).ifr_flags & IFF_UP) != 0, "IFF_UP by ioctl");

  for (int twice = 0; twice < 2; twice++) {  // the second round must be a quiet no-op
    nl.add_address(kDev, "10.255.0.1/30");
    nl.add_address(kDev, "fd00::1/64");
    expect(nl.add_route(kDev, "10.9.0.0/24") == (twice == 0), "add_route tells whether it added");
    expect(nl.add_route(kDev, "fd09::/64") == (twice == 0),
           "add_route tells whether it added (v6)");
  }
  expect_throws([&] { nl.add_address(kDev, "not-an-ip/8"); }, "add address not-an-ip/8 to");
  UdpSocket local4("10.255.0.1"), local6("fd00::1");  // binding proves the addresses are local

  // Kernel -> TUN: datagrams routed into the TUN come out of read() as bare IP packets.
  const std::string hello = "hello over tun";
  expect(send_udp("10.9.0.5", 4242, hello) == 0, "sendto 10.9.0.5");
  expect(tun_receives(*dev, [&](const Bytes& p) { return is_udp_to(p, "10.9.0.5", 4242, hello); }),
         "the IPv4 datagram to 10.9.0.5 read from the TUN");
  expect(send_udp("fd09::5", 4242, hello) == 0, "sendto fd09::5");
  expect(tun_receives(*dev, [&](const Bytes& p) { return is_udp_to(p, "fd09::5", 4242, hello); }),
         "the IPv6 datagram to fd09::5 read from the TUN");

  // TUN -> kernel: a packet written to the TUN is delivered to the local socket.
  tun::PacketBuf reply, empty, garbage;
  reply.assign(udp4_packet("10.9.0.7", 5555, "10.255.0.1", local4.port(), "reply"));
  garbage.assign(Bytes{0x00, 0x01});  // IP version 0: the kernel refuses it
  const std::array<const tun::PacketBuf*, 3> out{&empty, &garbage, &reply};
  expect(dev->write(out) == 1, "write() accepts only the valid packet");
  expect(dev->stats().write_errors == 2 && dev->errors().empty_writes == 1, "refusals counted");
  expect(local4.receive(2000) == "reply", "the written packet reached the local socket");

  for (int twice = 0; twice < 2; twice++) {
    expect(nl.remove_route(kDev, "10.9.0.0/24") == (twice == 0),
           "remove_route tells whether it removed");
    expect(nl.remove_route(kDev, "fd09::/64") == (twice == 0),
           "remove_route tells whether it removed (v6)");
  }
  expect(send_udp("10.9.0.5", 4242, hello) == ENETUNREACH, "IPv4 route removed");
  expect(send_udp("fd09::5", 4242, hello) == ENETUNREACH, "IPv6 route removed");
  expect(dev->stats().read_packets >= 2 && dev->errors().read_errors == 0, "read stats");

  dev.reset();  // not persistent: closing the descriptor removes the interface
  expect_throws([&] { nl.link_info(kDev); }, "netlink: look up sctptest0: ");
}

}  // namespace

TEST_CASE("Netlink and LinuxTun: errors say what was attempted (no root needed)") {
  CHECK_THROWS_WITH_AS(tun::LinuxTun::open("a-name-far-too-long", 1400),
                       doctest::Contains("a-name-far-too-long"), std::invalid_argument);
  tun::Netlink nl;
  CHECK_THROWS_WITH_AS(nl.link_info("nosuchdev0"), "netlink: look up nosuchdev0: No such device",
                       std::runtime_error);
  CHECK_THROWS_WITH_AS(nl.add_address("lo", "not-an-ip"),
                       doctest::Contains("add address not-an-ip to lo"), std::runtime_error);
  CHECK_THROWS_WITH_AS(nl.add_address("lo", "default"), doctest::Contains("not an IPv4 or IPv6"),
                       std::runtime_error);
  CHECK_THROWS_WITH_AS(nl.add_route("lo", "aa:bb:cc:dd:ee:ff"),
                       "netlink: add route aa:bb:cc:dd:ee:ff dev lo: not an IPv4 or IPv6 address",
                       std::runtime_error);
}

TEST_CASE("LinuxTun + Netlink in a private network namespace (needs root)") {
  if (::geteuid() != 0) {
    FAIL(
        "this test needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN for unshare(CLONE_NEWNET)); run "
        "unit_tests as root, or exclude it with --test-case-exclude='*needs root*'");
  }
  const tun::test_util::ChildOutcome child = tun::test_util::run_in_private_netns(
      [] {
        scenario();
        return std::string();
      },
      30);
  INFO("child: ", child.text);
  CHECK_MESSAGE(child.exited, "the child was killed by signal ", child.signal);
  CHECK_MESSAGE(child.ok(), "the child failed: ", child.text);
}
