#include "src/transport/udp/fake_network.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <netinet/in.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <system_error>

namespace transport::udp {
namespace {
constexpr int kHeaders4 = 28, kHeaders6 = 48;  // IP + UDP

// Leading bits two addresses of one family share.
int common_prefix(const base::Endpoint& a, const base::Endpoint& b) {
  auto bytes = [](const base::Endpoint& e) -> std::span<const std::uint8_t> {
    if (e.family() == AF_INET6)
      return {reinterpret_cast<const std::uint8_t*>(
                  &reinterpret_cast<const sockaddr_in6*>(e.sockaddr_ptr())->sin6_addr),
              16};
    return {reinterpret_cast<const std::uint8_t*>(
                &reinterpret_cast<const sockaddr_in*>(e.sockaddr_ptr())->sin_addr),
            4};
  };
  auto x = bytes(a), y = bytes(b);
  int bits = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    if (x[i] == y[i]) {
      bits += 8;
      continue;
    }
    return bits + std::countl_zero(static_cast<std::uint8_t>(x[i] ^ y[i]));
  }
  return bits;
}
}  // namespace

FakeNetwork::FakeNetwork(base::EventLoop& loop, std::uint64_t seed)
    : loop_(loop), random_(seed), timer_(loop, 0, 0, [this] { on_timer(); }) {}

FakeNetwork::~FakeNetwork() {
  for (FakeSocket* s : sockets_) s->detach();
}

std::unique_ptr<DatagramSocket> FakeNetwork::open(const base::Endpoint& local,
                                                  std::uint32_t /*fwmark*/, int /*buffer*/) {
  for (FakeSocket* s : sockets_) {
    if (s->local() == local)
      throw std::system_error(EADDRINUSE, std::generic_category(), "bind udp " + local.to_string());
  }
  auto socket = std::make_unique<FakeSocket>(*this, local);
  sockets_.push_back(socket.get());
  return socket;
}

void FakeNetwork::forget(FakeSocket* socket) {
  std::erase(sockets_, socket);
}

RouteView FakeNetwork::route(const base::Endpoint& remote, std::uint32_t /*fwmark*/,
                             const base::Endpoint* local) {
  RouteView view;
  view.mtu = mtu_;
  if (local && !local->is_wildcard() && local->family() == remote.family()) {
    view.source = *local;
  } else {  // like a table of connected routes: the socket whose address shares most bits
    int best = -1;
    for (FakeSocket* s : sockets_) {
      if (s->local().family() != remote.family()) continue;
      int bits = common_prefix(s->local(), remote);
      if (bits > best) best = bits, view.source = s->local();
    }
  }
  if (view.source) view.source->set_port(0);
  return view;
}

void FakeNetwork::cut(const base::Endpoint& a, const base::Endpoint& b, bool cut) {
  std::erase_if(cuts_, [&](const auto& c) {
    return (c.first.same_address(a) && c.second.same_address(b)) ||
           (c.first.same_address(b) && c.second.same_address(a));
  });
  if (cut) cuts_.emplace_back(a, b);
}

void FakeNetwork::nat(const base::Endpoint& inside, const base::Endpoint& outside) {
  std::erase_if(nats_, [&](const auto& n) { return n.first == inside; });
  nats_.emplace_back(inside, outside);
}

bool FakeNetwork::chance(double p) {
  if (p <= 0) return false;
  return std::uniform_real_distribution<double>(0, 1)(random_) < p;
}

bool FakeNetwork::is_cut(const base::Endpoint& a, const base::Endpoint& b) const {
  return std::any_of(cuts_.begin(), cuts_.end(), [&](const auto& c) {
    return (c.first.same_address(a) && c.second.same_address(b)) ||
           (c.first.same_address(b) && c.second.same_address(a));
  });
}

int FakeNetwork::send(const base::Endpoint& from, const base::Endpoint& to,
                      std::span<const std::uint8_t> bytes, bool fragmentable) {
  int headers = to.family() == AF_INET6 ? kHeaders6 : kHeaders4;
  if (!fragmentable && static_cast<int>(bytes.size()) + headers > mtu_) {
    ++stats_.too_big;
    return EMSGSIZE;
  }
  ++stats_.sent;
  Datagram d{from, to, {bytes.begin(), bytes.end()}};
  for (const auto& [inside, outside] : nats_) {
    if (inside == from) d.from = outside;
  }
  if (tap_) tap_(d.from, d.to, d.bytes);
  // Every decision is drawn for every datagram, so that the fates of the datagrams after it do
  // not depend on this one's.
  bool lost = chance(conditions_.loss), twice = chance(conditions_.duplicate),
       late = chance(conditions_.reorder);
  if (is_cut(from, to) || is_cut(d.from, to)) {
    ++stats_.cut;
    return 0;
  }
  if (lost) {
    ++stats_.lost;
    return 0;
  }
  if (twice) {
    ++stats_.duplicated;
    schedule(d, conditions_.delay);
  }
  std::string key = to.to_string();
  auto held = held_.find(key);
  if (late && held == held_.end()) {
    ++stats_.reordered;
    held_.emplace(key, std::move(d));
    arm(loop_.now() + std::max(conditions_.delay, 0.001));  // released by the next one, or this
    return 0;
  }
  schedule(std::move(d), conditions_.delay);
  if (held != held_.end()) {  // the one held back goes after this one
    schedule(std::move(held->second), conditions_.delay);
    held_.erase(held);
  }
  return 0;
}

void FakeNetwork::schedule(Datagram datagram, double delay) {
  pending_.push_back({loop_.now() + delay, order_++, std::move(datagram)});
  arm(loop_.now() + std::max(delay, 0.0));
}

void FakeNetwork::arm(double due) {
  if (timer_due_ >= 0 && timer_due_ <= due) return;
  timer_due_ = due;
  timer_.start(std::max(due - loop_.now(), 0.0));
}

void FakeNetwork::on_timer() {
  timer_due_ = -1;
  double now = loop_.now();
  // Delivered in the order sent (the delay is the same for all): those due now.
  while (!pending_.empty() && pending_.front().due <= now + 1e-9) {
    Datagram d = std::move(pending_.front().datagram);
    pending_.pop_front();
    deliver(std::move(d));
  }
  // Held back with nothing after it: it goes now.
  if (pending_.empty()) {
    for (auto& [key, d] : held_) deliver(std::move(d));
    held_.clear();
  }
  if (!pending_.empty()) arm(pending_.front().due);
}

void FakeNetwork::deliver(Datagram datagram) {
  base::Endpoint to = datagram.to;
  for (const auto& [inside, outside] : nats_) {
    if (outside == to) to = inside;
  }
  for (FakeSocket* s : sockets_) {
    if (s->local() == to) {
      ++stats_.delivered;
      s->arrive(datagram.from, datagram.bytes);
      return;
    }
  }
  ++stats_.unroutable;
}

FakeSocket::FakeSocket(FakeNetwork& network, const base::Endpoint& local)
    : network_(&network), local_(local) {
  event_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (event_fd_ < 0) throw std::system_error(errno, std::generic_category(), "eventfd");
}

FakeSocket::~FakeSocket() {
  if (network_) network_->forget(this);
  close(event_fd_);
}

void FakeSocket::arrive(const base::Endpoint& from, std::span<const std::uint8_t> bytes) {
  inbox_.emplace_back(from, std::vector<std::uint8_t>(bytes.begin(), bytes.end()));
  std::uint64_t one = 1;
  (void)!write(event_fd_, &one, sizeof one);
}

std::size_t FakeSocket::receive(const Handler& handler, std::size_t limit) {
  std::size_t n = 0;
  while (n < limit && !inbox_.empty()) {
    auto [from, bytes] = std::move(inbox_.front());
    inbox_.pop_front();
    ++n;
    ++stats_.received;
    stats_.received_bytes += bytes.size();
    handler(from, bytes);
  }
  if (inbox_.empty()) {
    std::uint64_t value;
    (void)!read(event_fd_, &value, sizeof value);
  }
  return n;
}

std::span<std::uint8_t> FakeSocket::queue(const base::Endpoint& to,
                                          std::span<const std::uint8_t> datagram) {
  return queue(to, datagram, {});
}

std::span<std::uint8_t> FakeSocket::queue(const base::Endpoint& to,
                                          std::span<const std::uint8_t> head,
                                          std::span<const std::uint8_t> body) {
  std::vector<std::uint8_t> bytes(head.begin(), head.end());
  bytes.insert(bytes.end(), body.begin(), body.end());
  queue_.emplace_back(to, std::move(bytes));
  return queue_.back().second;
}

void FakeSocket::flush() {
  while (!queue_.empty()) {
    auto& [to, bytes] = queue_.front();
    send_now(to, bytes);
    queue_.pop_front();
  }
}

int FakeSocket::count_send(int err, std::size_t bytes) {
  if (err == 0) {
    ++stats_.sent;
    stats_.sent_bytes += bytes;
  } else {
    ++stats_.send_errors;
    if (err == EMSGSIZE) ++stats_.too_big;
  }
  return err;
}

int FakeSocket::send(const base::Endpoint& to, std::span<const std::uint8_t> datagram,
                     bool fragmentable) {
  if (!network_) return count_send(ENETDOWN, datagram.size());
  return count_send(network_->send(local_, to, datagram, fragmentable), datagram.size());
}

int FakeSocket::send_now(const base::Endpoint& to, std::span<const std::uint8_t> datagram) {
  return send(to, datagram, false);
}

int FakeSocket::send_fragmentable(const base::Endpoint& to,
                                  std::span<const std::uint8_t> datagram) {
  return send(to, datagram, true);
}

}  // namespace transport::udp
