// delayline: a WAN emulator in user space — the kernels here have no netem. Bridges two network
// interfaces (typically the two veth ends in a middle namespace between two gateways) frame by
// frame, holding each frame for a one-way delay, optionally dropping frames at random and
// serialising them at a bottleneck rate behind a bounded queue.
//
//   delayline --a IFACE --b IFACE [--delay-ms MS] [--delay-ms-ba MS] [--loss PCT] [--loss-ba PCT]
//             [--rate-mbit R] [--queue-ms Q] [--slots N] [--input-kb K] [--seed X] [--timeout S]
//
// Direction ab: frames received on --a leave on --b; ba the reverse. --delay-ms (default 10, a
// decimal) is the one-way delay of both directions unless --delay-ms-ba sets ba's. --loss PCT (a
// decimal, default 0) drops that share of the frames of each direction independently (Bernoulli,
// xorshift PRNG seeded by --seed; --loss-ba sets ba's alone). --rate-mbit R (default 0: no
// limit) models a bottleneck link: a frame waits until the link has sent the frames before it
// (len*8/R each), then travels the delay; a frame that would wait longer than --queue-ms (default
// 50) is dropped (tail drop), like a router's buffer. --slots N (default 65536) frames of up to
// 2048 bytes can be held per direction; beyond that a frame is dropped as queue_full (at 1 Gbit/s
// and 50 ms one way about 4,200 frames are in flight). Frames larger than a slot (a segmentation
// offload left on) are dropped and counted as too_big: turn offloads off on the links.
// --input-kb K (default 4096) is the receive buffer of each raw socket: what queues in front of
// the delay line when it cannot keep up (a bounded router queue; overflow is counted as
// kernel_drops), not a queue of a second or more that would swamp every latency figure.
//
// Runs until SIGINT/SIGTERM or --timeout S (default 3600), then prints one line per direction:
//   delayline ab: frames=<in> bytes=<in> sent=<n> lost=<random drops> queue_drops=<n>
//                 queue_full=<n> too_big=<n> send_errors=<n> kernel_drops=<n> max_held=<n>
// Exit status 0, 1 on an error, 2 on bad usage. Needs CAP_NET_RAW (AF_PACKET sockets).

#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "tool_cli.hpp"

namespace {

using tool::Error;
using tool::number;
using tool::usage;

constexpr const char* kUsage =
    "usage: delayline --a IFACE --b IFACE [--delay-ms MS] [--delay-ms-ba MS] [--loss PCT]\n"
    "                 [--loss-ba PCT] [--rate-mbit R] [--queue-ms Q] [--slots N] [--input-kb K]\n"
    "                 [--seed X] [--timeout S]\n";

constexpr std::size_t kSlotBytes = 2048;
constexpr unsigned kBatch = 64;

volatile sig_atomic_t g_stop = 0;
void on_signal(int) {
  g_stop = 1;
}

std::int64_t now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return std::int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

double decimal(const std::string& key, const std::string& v, double lo, double hi) {
  char* end = nullptr;
  errno = 0;
  double x = std::strtod(v.c_str(), &end);
  if (v.empty() || *end != '\0' || errno != 0 || !std::isfinite(x) || x < lo || x > hi)
    usage(key + " must be a number from " + std::to_string(lo) + " to " + std::to_string(hi) +
          ", not '" + v + "'");
  return x;
}

struct Args {
  std::string a, b;
  double delay_ms = 10, delay_ba_ms = -1, loss = 0, loss_ba = -1, rate_mbit = 0, queue_ms = 50;
  unsigned long long slots = 65536, seed = 1, timeout = 3600, input_kb = 4096;
};

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; i += 2) {
    std::string k = argv[i];
    if (i + 1 >= argc) usage("missing value for " + k);
    std::string v = argv[i + 1];
    if (k == "--a")
      a.a = v;
    else if (k == "--b")
      a.b = v;
    else if (k == "--delay-ms")
      a.delay_ms = decimal(k, v, 0, 10000);
    else if (k == "--delay-ms-ba")
      a.delay_ba_ms = decimal(k, v, 0, 10000);
    else if (k == "--loss")
      a.loss = decimal(k, v, 0, 100);
    else if (k == "--loss-ba")
      a.loss_ba = decimal(k, v, 0, 100);
    else if (k == "--rate-mbit")
      a.rate_mbit = decimal(k, v, 0, 1000000);
    else if (k == "--queue-ms")
      a.queue_ms = decimal(k, v, 0, 10000);
    else if (k == "--slots")
      a.slots = number(k, v, 16, 1 << 22);
    else if (k == "--input-kb")
      a.input_kb = number(k, v, 64, 1 << 20);
    else if (k == "--seed")
      a.seed = number(k, v, 0, ~0ULL);
    else if (k == "--timeout")
      a.timeout = number(k, v, 1, 86400);
    else
      usage("unknown option " + k);
  }
  if (a.a.empty() || a.b.empty()) usage("--a and --b are required");
  if (a.a == a.b) usage("--a and --b must be two interfaces");
  if (a.delay_ba_ms < 0) a.delay_ba_ms = a.delay_ms;
  if (a.loss_ba < 0) a.loss_ba = a.loss;
  return a;
}

// A raw socket on one interface: receives every frame arriving there (not the ones it sends
// itself), sends frames out of it unchanged.
struct Port {
  std::string name;
  int fd = -1;
  int ifindex = 0;
  std::uint64_t kernel_drops = 0;

  Port(const std::string& ifname, int input_buffer) : name(ifname) {
    ifindex = static_cast<int>(if_nametoindex(ifname.c_str()));
    if (ifindex == 0) throw Error("no interface " + ifname);
    fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, htons(ETH_P_ALL));
    if (fd < 0) throw Error("AF_PACKET socket: " + std::string(std::strerror(errno)));
    int one = 1;
    if (setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof one) != 0)
      throw Error("PACKET_IGNORE_OUTGOING: " + std::string(std::strerror(errno)));
    setsockopt(fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof one);  // best effort
    int buf = input_buffer;
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &buf, sizeof buf) != 0)
      setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
    buf = 64 << 20;
    if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &buf, sizeof buf) != 0)
      setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);
    sockaddr_ll sll{};
    sll.sll_family = AF_PACKET;
    sll.sll_protocol = htons(ETH_P_ALL);
    sll.sll_ifindex = ifindex;
    if (bind(fd, reinterpret_cast<sockaddr*>(&sll), sizeof sll) != 0)
      throw Error("bind to " + ifname + ": " + std::strerror(errno));
  }
  ~Port() {
    if (fd >= 0) close(fd);
  }
  Port(const Port&) = delete;
  Port& operator=(const Port&) = delete;

  void read_kernel_drops() {
    tpacket_stats st{};
    socklen_t len = sizeof st;
    if (getsockopt(fd, SOL_PACKET, PACKET_STATISTICS, &st, &len) == 0) kernel_drops += st.tp_drops;
  }
};

// One direction: a FIFO of held frames (fixed slots), each with the time it may leave.
class Line {
 public:
  Line(const char* name, Port& in, Port& out, double delay_ms, double loss_pct, double rate_mbit,
       double queue_ms, std::size_t slots, std::uint64_t seed)
      : name_(name),
        in_(in),
        out_(out),
        delay_ns_(static_cast<std::int64_t>(delay_ms * 1e6)),
        loss_threshold_(static_cast<std::uint64_t>(loss_pct / 100.0 * 18446744073709551615.0)),
        ns_per_byte_(rate_mbit > 0 ? 8000.0 / rate_mbit : 0),
        queue_ns_(static_cast<std::int64_t>(queue_ms * 1e6)),
        slots_(slots),
        rng_(seed | 1) {
    void* mem = mmap(nullptr, slots_ * kSlotBytes, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) throw Error("mmap: " + std::string(std::strerror(errno)));
    data_ = static_cast<std::uint8_t*>(mem);
    len_.resize(slots_);
    due_.resize(slots_);
  }
  ~Line() { munmap(data_, slots_ * kSlotBytes); }
  Line(const Line&) = delete;
  Line& operator=(const Line&) = delete;

  // Reads what the input port has (bounded per call), stamping each frame's departure time.
  void receive() {
    for (int round = 0; round < 16; ++round) {
      std::array<mmsghdr, kBatch> msgs{};
      std::array<iovec, kBatch> iov{};
      std::array<std::size_t, kBatch> slot{};
      unsigned n = 0;
      for (; n < kBatch; ++n) {
        if (count_ + n >= slots_) break;
        slot[n] = (head_ + count_ + n) % slots_;
        iov[n] = {data_ + slot[n] * kSlotBytes, kSlotBytes};
        msgs[n].msg_hdr.msg_iov = &iov[n];
        msgs[n].msg_hdr.msg_iovlen = 1;
      }
      if (n == 0) {  // the line is full: take one frame and drop it
        std::uint8_t scratch[kSlotBytes];
        if (recv(in_.fd, scratch, sizeof scratch, MSG_DONTWAIT | MSG_TRUNC) < 0) return;
        ++frames_;
        ++queue_full_;
        continue;
      }
      int got = recvmmsg(in_.fd, msgs.data(), n, MSG_DONTWAIT | MSG_TRUNC, nullptr);
      if (got <= 0) return;
      std::int64_t t = now_ns();
      for (int i = 0; i < got; ++i) {
        std::size_t len = msgs[static_cast<std::size_t>(i)].msg_len;
        ++frames_;
        bytes_ += len;
        bool keep = true;
        if (len > kSlotBytes) {
          ++too_big_;
          keep = false;
        } else if (loss_threshold_ && next_random() < loss_threshold_) {
          ++lost_;
          keep = false;
        }
        std::int64_t leave = t + delay_ns_;
        if (keep && ns_per_byte_ > 0) {
          std::int64_t start = std::max(t, link_free_);
          if (start - t > queue_ns_) {
            ++queue_drops_;
            keep = false;
          } else {
            link_free_ = start + static_cast<std::int64_t>(static_cast<double>(len) * ns_per_byte_);
            leave = link_free_ + delay_ns_;
          }
        }
        if (!keep) continue;
        // Keep the FIFO dense: the kept frame moves into the next free slot if frames before it
        // in this batch were dropped.
        std::size_t dst = (head_ + count_) % slots_;
        std::size_t src = slot[static_cast<std::size_t>(i)];
        if (dst != src) std::memcpy(data_ + dst * kSlotBytes, data_ + src * kSlotBytes, len);
        len_[dst] = static_cast<std::uint16_t>(len);
        due_[dst] = leave;
        ++count_;
        max_held_ = std::max(max_held_, count_);
      }
      if (static_cast<unsigned>(got) < n) return;
    }
  }

  // Sends every frame whose time has come.
  void send(std::int64_t now) {
    while (count_ > 0 && due_[head_] <= now) {
      std::array<mmsghdr, kBatch> msgs{};
      std::array<iovec, kBatch> iov{};
      sockaddr_ll to{};
      to.sll_family = AF_PACKET;
      to.sll_ifindex = out_.ifindex;
      to.sll_halen = ETH_ALEN;
      unsigned n = 0;
      for (; n < kBatch && n < count_; ++n) {
        std::size_t s = (head_ + n) % slots_;
        if (due_[s] > now) break;
        iov[n] = {data_ + s * kSlotBytes, len_[s]};
        msgs[n].msg_hdr.msg_iov = &iov[n];
        msgs[n].msg_hdr.msg_iovlen = 1;
        msgs[n].msg_hdr.msg_name = &to;
        msgs[n].msg_hdr.msg_namelen = sizeof to;
      }
      int sent = sendmmsg(out_.fd, msgs.data(), n, 0);
      unsigned done = 0;
      if (sent < 0) {
        if (errno == EINTR) continue;
        ++send_errors_;  // ENOBUFS and the like: this frame is lost, the line moves on
        done = 1;
      } else {
        sent_ += static_cast<unsigned>(sent);
        done = static_cast<unsigned>(sent);
        if (done == 0) done = 1, ++send_errors_;
      }
      head_ = (head_ + done) % slots_;
      count_ -= done;
    }
  }

  // Nanoseconds until the next frame may leave (-1: nothing held).
  std::int64_t next_due() const { return count_ ? due_[head_] : -1; }

  void report() const {
    std::printf(
        "delayline %s: frames=%llu bytes=%llu sent=%llu lost=%llu queue_drops=%llu queue_full=%llu "
        "too_big=%llu send_errors=%llu kernel_drops=%llu max_held=%zu\n",
        name_, ull(frames_), ull(bytes_), ull(sent_), ull(lost_), ull(queue_drops_),
        ull(queue_full_), ull(too_big_), ull(send_errors_), ull(in_.kernel_drops), max_held_);
  }

 private:
  static unsigned long long ull(std::uint64_t v) { return static_cast<unsigned long long>(v); }
  std::uint64_t next_random() {  // xorshift64*
    rng_ ^= rng_ >> 12;
    rng_ ^= rng_ << 25;
    rng_ ^= rng_ >> 27;
    return rng_ * 2685821657736338717ULL;
  }

  const char* name_;
  Port& in_;
  Port& out_;
  std::int64_t delay_ns_;
  std::uint64_t loss_threshold_;
  double ns_per_byte_;
  std::int64_t queue_ns_;
  std::size_t slots_;
  std::uint64_t rng_;
  std::uint8_t* data_ = nullptr;
  std::vector<std::uint16_t> len_;
  std::vector<std::int64_t> due_;
  std::size_t head_ = 0, count_ = 0, max_held_ = 0;
  std::int64_t link_free_ = 0;
  std::uint64_t frames_ = 0, bytes_ = 0, sent_ = 0, lost_ = 0, queue_drops_ = 0, queue_full_ = 0,
                too_big_ = 0, send_errors_ = 0;
};

int run(const Args& args) {
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  prctl(PR_SET_TIMERSLACK, 1000UL);  // wake within ~1 us of a frame's time, not 50 us

  int input = static_cast<int>(args.input_kb * 1024);
  Port a(args.a, input), b(args.b, input);
  Line ab("ab", a, b, args.delay_ms, args.loss, args.rate_mbit, args.queue_ms, args.slots,
          args.seed);
  Line ba("ba", b, a, args.delay_ba_ms, args.loss_ba, args.rate_mbit, args.queue_ms, args.slots,
          args.seed * 0x9e3779b97f4a7c15ULL + 7);
  std::printf(
      "delayline: %s <-> %s, delay %.3f/%.3f ms, loss %.3f/%.3f %%, rate %s, queue %.1f ms\n",
      args.a.c_str(), args.b.c_str(), args.delay_ms, args.delay_ba_ms, args.loss, args.loss_ba,
      args.rate_mbit > 0 ? (std::to_string(args.rate_mbit) + " Mbit/s").c_str() : "unlimited",
      args.queue_ms);
  std::fflush(stdout);

  const std::int64_t deadline = now_ns() + static_cast<std::int64_t>(args.timeout) * 1000000000;
  pollfd fds[2] = {{a.fd, POLLIN, 0}, {b.fd, POLLIN, 0}};
  while (!g_stop) {
    std::int64_t now = now_ns();
    if (now >= deadline) break;
    ab.send(now);
    ba.send(now);
    std::int64_t wait = 100000000;  // 100 ms at most, so signals and the deadline are seen
    for (const Line* line : {&ab, &ba}) {
      std::int64_t due = line->next_due();
      if (due >= 0) wait = std::min(wait, std::max<std::int64_t>(due - now, 0));
    }
    timespec ts{static_cast<time_t>(wait / 1000000000), static_cast<long>(wait % 1000000000)};
    int r = ppoll(fds, 2, &ts, nullptr);
    if (r < 0) {
      if (errno == EINTR) continue;
      throw Error("ppoll: " + std::string(std::strerror(errno)));
    }
    if (fds[0].revents & POLLIN) ab.receive();
    if (fds[1].revents & POLLIN) ba.receive();
  }
  a.read_kernel_drops();
  b.read_kernel_drops();
  ab.report();
  ba.report();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  tool::name = "delayline";
  tool::usage_text = kUsage;
  Args args = parse(argc, argv);
  return tool::run_main([&] { return run(args); });
}
