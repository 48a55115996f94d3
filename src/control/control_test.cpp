#include "src/control/control.hpp"

#include <doctest/doctest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include <chrono>
#include <future>

#include "src/control/commands.hpp"

namespace {
std::string temp_socket_path() {
  char dir[] = "/tmp/sctptund-control-XXXXXX";
  REQUIRE(mkdtemp(dir) != nullptr);
  return std::string(dir) + "/sub/ctl.sock";
}

// Runs the loop until the client's request has its reply (bounded).
std::string ask(base::EventLoop& loop, const std::string& path, const std::string& line) {
  auto reply = std::async(std::launch::async, [&] { return control::request(path, line, 3); });
  for (int i = 0;
       i < 3000 && reply.wait_for(std::chrono::milliseconds(1)) != std::future_status::ready; ++i)
    loop.run_once();
  return reply.get();
}
}  // namespace

TEST_CASE("control: requests get replies, the socket is private, a second daemon is refused") {
  base::EventLoop loop;
  std::string path = temp_socket_path();
  std::vector<std::string> seen;
  {
    control::ControlServer server(loop, path, [&](std::string_view request) {
      seen.emplace_back(request);
      return request == "ping" ? std::string("pong\n") : std::string("error: unknown request\n");
    });
    struct stat st {};
    REQUIRE(stat(path.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);

    CHECK(ask(loop, path, "ping") == "pong\n");
    CHECK(ask(loop, path, "frobnicate") == "error: unknown request\n");
    CHECK(seen == std::vector<std::string>{"ping", "frobnicate"});

    CHECK_THROWS_WITH(
        control::ControlServer(loop, path, [](std::string_view) { return std::string(); }),
        doctest::Contains("in use by a running daemon"));
  }
  CHECK(access(path.c_str(), F_OK) != 0);  // removed on shutdown
  CHECK_THROWS_WITH(control::request(path, "ping", 1), doctest::Contains("is sctptund running?"));
  std::string sub = path.substr(0, path.rfind('/'));
  rmdir(sub.c_str());
  rmdir(sub.substr(0, sub.rfind('/')).c_str());
}

TEST_CASE("control: a client that does not read its reply never holds up the event loop") {
  base::EventLoop loop;
  std::string path = temp_socket_path();
  const std::string big(8 << 20, 'x');  // far more than the socket buffers hold
  bool asked = false;
  control::ControlServer server(loop, path, [&](std::string_view) {
    asked = true;
    return big;
  });
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  REQUIRE(connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0);
  REQUIRE(write(fd, "show\n", 5) == 5);
  // The reply is due while nobody reads it: each iteration of the loop must come back at once.
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 200 && !asked; ++i) loop.run_once();
  REQUIRE(asked);
  for (int i = 0; i < 20; ++i) loop.run_once();
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::milliseconds(500));
  // A reader that comes late still gets the whole reply, while the loop runs.
  auto got = std::async(std::launch::async, [fd] {
    std::string out;
    char buf[65536];
    for (;;) {
      ssize_t n = read(fd, buf, sizeof buf);
      if (n <= 0) return out;
      out.append(buf, static_cast<std::size_t>(n));
    }
  });
  for (int i = 0;
       i < 4000 && got.wait_for(std::chrono::milliseconds(1)) != std::future_status::ready; ++i)
    loop.run_once();
  std::string reply = got.get();
  CHECK(reply.size() == big.size());
  CHECK(reply.find_first_not_of('x') == std::string::npos);
  close(fd);
  std::string sub = path.substr(0, path.rfind('/'));
  unlink(path.c_str());
  rmdir(sub.c_str());
  rmdir(sub.substr(0, sub.rfind('/')).c_str());
}

TEST_CASE("commands: text and JSON show the peers, associations and counters") {
  control::commands::Snapshot s;
  s.version = "0.1.0";
  s.interface_name = "tun0";
  s.mtu = 1400;
  s.transport_kind = "udp";
  s.counters.tunneled_packets = 42;
  s.counters.drop(gateway::Drop::no_rule);
  s.flows = 3;
  s.max_flows = 100;
  control::commands::PeerSnapshot peer;
  peer.name = "site-\"b\"";
  peer.up = true;
  peer.remotes = {"192.0.2.2:9899"};
  control::commands::AssocSnapshot assoc;
  assoc.info.id = 7;
  assoc.info.state = "established";
  assoc.info.path = "192.0.2.1:9899 -> 192.0.2.2:9899";
  assoc.info.out_streams = 256;
  assoc.ready = true;
  assoc.flows = 3;
  transport::PathInfo path;
  path.local = "192.0.2.1:9899";
  path.remote = "192.0.2.2:9899";
  path.state = "up";
  path.primary = true;
  path.role = "active";
  path.rate_out = 12'310'000;
  path.rate_in = 310'200;
  path.share_pct = 100;
  path.cwnd = 2'097'152;
  path.data_loss_pct = 0.25;
  assoc.info.paths.push_back(path);
  peer.associations.push_back(assoc);
  peer.source_not_allowed = 5;
  s.peers.push_back(peer);

  std::string text = control::commands::render_text(s);
  CHECK(text.find("interface: tun0") != std::string::npos);
  CHECK(text.find("peer: site-\"b\"  (up)") != std::string::npos);
  CHECK(text.find("association 7: established, ready") != std::string::npos);
  CHECK(text.find("dropped: 1 (no_rule 1)") != std::string::npos);
  CHECK(text.find("\n  source not allowed: 5 packets dropped\n") != std::string::npos);
  CHECK(text.find("\n    path: 192.0.2.1:9899 -> 192.0.2.2:9899  up, primary  0 B out, 0 B in\n"
                  "      active, out 12.31 Mbit/s (100%), in 310.2 kbit/s, cwnd 2.00 MiB, data "
                  "loss 0.25%\n") != std::string::npos);

  std::string json = control::commands::render_json(s);
  CHECK(json.find("\"tunneled_packets\":42") != std::string::npos);
  CHECK(json.find("\"name\":\"site-\\\"b\\\"\"") != std::string::npos);
  CHECK(json.find("\"no_rule\":1") != std::string::npos);
  CHECK(json.find("\"ready\":true") != std::string::npos);
  CHECK(json.find("\"last_handshake_failure\":\"\",\"source_not_allowed\":5,") !=
        std::string::npos);
  CHECK(json.find("\"source_not_allowed\":0") != std::string::npos);  // in drops
  CHECK(json.find("\"role\":\"active\",\"rate_out_bps\":12310000,\"rate_in_bps\":310200,"
                  "\"share_pct\":100,\"cwnd\":2097152,\"data_loss_pct\":0.25}") !=
        std::string::npos);
  CHECK(json.front() == '{');
  CHECK(json.back() == '\n');
}

TEST_CASE("control: a request is the first line, at most kMaxRequest bytes; others are refused") {
  using Kind = control::ParsedRequest::Kind;
  auto parse = [](std::string_view received, bool closed) {
    return control::parse_request(received, closed);
  };
  CHECK(parse("sho", false).kind == Kind::incomplete);
  CHECK(parse("", false).kind == Kind::incomplete);
  CHECK(parse("", true).kind == Kind::empty);
  CHECK(parse("\nshow\n", false).kind == Kind::empty);
  auto line = parse("show json\nignored", false);
  CHECK(line.kind == Kind::line);
  CHECK(line.request == "show json");
  line = parse("ping", true);  // closed without a newline: all it sent
  CHECK(line.kind == Kind::line);
  CHECK(line.request == "ping");
  const std::string longest(control::kMaxRequest, 'x');
  CHECK(parse(longest, false).kind == Kind::incomplete);
  CHECK(parse(longest + "\n", false).request.size() == control::kMaxRequest);
  CHECK(parse(longest + "x", false).kind == Kind::too_long);
  CHECK(parse(longest + "x\n", false).kind == Kind::too_long);
  CHECK(parse(longest + "x", true).kind == Kind::too_long);
}

TEST_CASE("commands: requests are dispatched; an unknown one is named in one line of text") {
  int snapshots = 0, reloads = 0;
  control::commands::Requests requests{[&] {
                                         ++snapshots;
                                         control::commands::Snapshot s;
                                         s.interface_name = "tun7";
                                         return s;
                                       },
                                       [&] {
                                         ++reloads;
                                         return std::string("ok: reloaded\n");
                                       }};
  using control::commands::handle;
  CHECK(handle("ping", requests) == "pong\n");
  CHECK(handle("reload", requests) == "ok: reloaded\n");
  CHECK(handle("show", requests).find("interface: tun7") != std::string::npos);
  CHECK(handle("show json", requests).front() == '{');
  CHECK(snapshots == 2);
  CHECK(reloads == 1);
  CHECK(handle("frob", requests) == "error: unknown request 'frob'\n");
  CHECK(handle(std::string_view("a'\\\x1b[2J\0\xff", 9), requests) ==
        "error: unknown request 'a\\x27\\x5c\\x1b[2J\\x00\\xff'\n");
  CHECK(handle(std::string(100, 'y'), requests) ==
        "error: unknown request '" + std::string(64, 'y') + "'...\n");
  CHECK(handle("show ", requests).starts_with("error: unknown request 'show '"));
}
