#include "src/fec/controller.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <random>

namespace {

// R(k, m, p) by the definition, with exact binomial coefficients (small n only).
double residual_oracle(std::size_t k, std::size_t m, double p) {
  std::size_t n = k + m;
  double r = 0;
  for (std::size_t l = m + 1; l <= n; ++l) {
    double choose = 1;
    for (std::size_t i = 1; i <= l; ++i)
      choose = choose * static_cast<double>(n - l + i) / static_cast<double>(i);
    r += choose * std::pow(p, static_cast<double>(l)) *
         std::pow(1 - p, static_cast<double>(n - l)) * static_cast<double>(l) /
         static_cast<double>(n);
  }
  return r;
}

}  // namespace

TEST_CASE("fec controller: residual loss matches the binomial definition and a simulation") {
  for (std::size_t k : {1u, 4u, 16u, 32u})
    for (std::size_t m : {0u, 1u, 2u, 4u, 8u})
      for (double p : {0.0, 1e-4, 1e-3, 0.01, 0.05, 0.2}) {
        double want = residual_oracle(k, m, p);
        CHECK(fec::residual_loss(k, m, p) == doctest::Approx(want).epsilon(1e-9).scale(1e-12));
      }
  CHECK(fec::residual_loss(32, 0, 0.01) == doctest::Approx(0.01));  // no parity: every loss stays

  // Monte Carlo: blocks of 16 + 2 with 3 % loss; lost data in blocks of > 2 losses stays lost.
  std::mt19937_64 rng(7);
  std::bernoulli_distribution lose(0.03);
  std::uint64_t data = 0, residual = 0;
  for (int block = 0; block < 200000; ++block) {
    int losses = 0, data_lost = 0;
    for (int i = 0; i < 18; ++i) {
      if (!lose(rng)) continue;
      ++losses;
      if (i < 16) ++data_lost;
    }
    data += 16;
    if (losses > 2) residual += static_cast<std::uint64_t>(data_lost);
  }
  double simulated = static_cast<double>(residual) / static_cast<double>(data);
  CHECK(simulated == doctest::Approx(fec::residual_loss(16, 2, 0.03)).epsilon(0.1));
}

TEST_CASE("fec controller: parity_for is the smallest m that meets the target, within the cap") {
  CHECK(fec::parity_for(32, 0, 1e-6, 8) == 0);
  for (double p : {1e-4, 1e-3, 0.01, 0.02}) {
    std::size_t m = fec::parity_for(32, p, 1e-6, 16);
    CHECK(fec::residual_loss(32, m, p) <= 1e-6);
    if (m > 0) CHECK(fec::residual_loss(32, m - 1, p) > 1e-6);
  }
  CHECK(fec::parity_for(32, 0.3, 1e-6, 8) == 8);  // out of reach: the cap
}

TEST_CASE(
    "fec controller: framing starts on retransmissions within the window, parity follows the "
    "reports") {
  fec::ControllerOptions o;
  o.block = 32;
  o.max_overhead = 0.25;
  o.start_retransmits = 3;
  fec::Controller c(o);
  CHECK_FALSE(c.framing());
  CHECK(c.redundancy() == 0);
  c.on_sctp(0, 0, 0.0);
  c.on_sctp(100000, 2, 1.0);  // two retransmissions: not yet
  CHECK_FALSE(c.framing());
  c.on_sctp(200000, 2, 4.0);  // old ones expire from the window
  c.on_sctp(300000, 4, 5.0);
  CHECK_FALSE(c.framing());
  c.on_sctp(400000, 5, 5.5);  // 3 within 2 s
  CHECK(c.framing());
  CHECK(c.started_at() == 5.5);
  CHECK(c.redundancy() > 0);

  // Reports: 1 % loss. m follows parity_for(32, 1.5 %, 1e-6) within the cap of 8.
  std::uint32_t received = 0, lost = 0;
  c.on_report(received, lost, 6.0);
  for (int i = 1; i <= 20; ++i) {
    received += 9900;
    lost += 100;
    c.on_report(received, lost, 6.0 + 0.1 * i);
  }
  CHECK(c.loss() == doctest::Approx(0.01));
  CHECK(c.redundancy() ==
        doctest::Approx(static_cast<double>(fec::parity_for(32, 0.015, 1e-6, 8)) / 32));
  CHECK(c.redundancy() <= 0.25);

  // The path becomes clean: after the window only clean reports count, no parity.
  for (int i = 1; i <= 30; ++i) {
    received += 10000;
    c.on_report(received, lost, 8.0 + 0.1 * i);
  }
  CHECK(c.loss() == 0);
  CHECK(c.redundancy() == 0);
  CHECK(c.framing());  // stays on: the path measures loss from now on

  // Heavy loss: the cap.
  for (int i = 1; i <= 30; ++i) {
    received += 7000;
    lost += 3000;
    c.on_report(received, lost, 12.0 + 0.1 * i);
  }
  CHECK(c.redundancy() == doctest::Approx(0.25));
}

TEST_CASE("fec controller: report counters wrap around 2^32") {
  fec::Controller c;
  for (int i = 0; i < 5; ++i) c.on_sctp(1000u * i, 2u * i, 0.1 * i);
  REQUIRE(c.framing());
  std::uint32_t received = 0xffffff00u, lost = 0xfffffff0u;
  c.on_report(received, lost, 1.0);
  received += 100000;  // wraps
  lost += 1000;        // wraps
  c.on_report(received, lost, 1.1);
  CHECK(c.loss() == doctest::Approx(1000.0 / 101000.0));
}

TEST_CASE("fec controller: the parity table gives every block size its own parity, at least 2") {
  fec::ControllerOptions o;
  o.block = 64;
  o.max_overhead = 0.25;
  fec::Controller c(o);
  for (int i = 0; i < 5; ++i) c.on_sctp(1000u * i, 2u * i, 0.1 * i);
  REQUIRE(c.framing());
  std::uint32_t received = 0, lost = 0;
  c.on_report(received, lost, 1.0);
  received += 99000;
  lost += 1000;
  c.on_report(received, lost, 1.1);  // 1 % loss
  const auto& table = c.parity_table();
  for (std::size_t n = 1; n <= 64; ++n) {
    std::size_t cap = std::max<std::size_t>(2, n / 4);
    CHECK(table[n] <= cap);
    CHECK(table[n] >= 1);
    CHECK(table[n] == fec::parity_for(n, 0.015, 1e-6, cap));
  }
  CHECK(table[1] == 2);  // a lone datagram: two copies' worth
  CHECK(c.redundancy() == doctest::Approx(table[64] / 64.0));
  // A clean path: no parity for any size.
  for (int i = 1; i <= 30; ++i) {
    received += 10000;
    c.on_report(received, lost, 2.0 + 0.1 * i);
  }
  for (std::size_t n = 1; n <= 64; ++n) CHECK(table[n] == 0);
}

TEST_CASE("fec restart verdict: random losses repaired restart, bursts refuse, too few wait") {
  using fec::RestartVerdict;
  auto v = [](std::uint32_t received, std::uint32_t lost, std::uint32_t left, double waited) {
    return fec::restart_verdict({received, lost, left, waited});
  };
  CHECK(v(20000, 20, 1, 2.0) == RestartVerdict::restart);   // 0.1 %: parity repaired 19 of 20
  CHECK(v(10253, 9, 1, 2.0) == RestartVerdict::restart);    // measured at 20 ms, 0.1 %
  CHECK(v(20000, 20, 10, 2.0) == RestartVerdict::restart);  // half exactly
  CHECK(v(20000, 20, 11, 2.0) == RestartVerdict::refuse);   // bursts parity could not repair
  CHECK(v(1000, 100, 0, 2.0) == RestartVerdict::refuse);    // 9 % lost: heavy loss
  CHECK(v(1900, 100, 0, 2.0) == RestartVerdict::restart);   // 5 % exactly
  // One unrepaired loss of the first half second: too few to tell, not a refusal.
  CHECK(v(920, 1, 1, 0.5) == RestartVerdict::wait);
  CHECK(v(1194, 2, 1, 0.5) == RestartVerdict::wait);
  CHECK(v(5000, 3, 3, 2.5) == RestartVerdict::wait);
  // Evidence enough (4 losses), or waited long enough: judged.
  CHECK(v(5000, 4, 3, 0.5) == RestartVerdict::refuse);
  CHECK(v(5000, 4, 0, 0.5) == RestartVerdict::restart);
  CHECK(v(40000, 0, 0, 4.0) == RestartVerdict::restart);  // a clean path since
  CHECK(v(40000, 2, 2, 4.0) == RestartVerdict::refuse);
  // Counters near the top of their range do not overflow the comparison.
  CHECK(v(0xF0000000u, 0x0F000000u, 0, 1.0) == RestartVerdict::refuse);
}

TEST_CASE("fec controller: by default the first retransmitted chunk starts framing and parity") {
  fec::Controller c;
  c.on_sctp(0, 0, 0.0);
  c.on_sctp(5000, 0, 0.1);  // a clean path stays plain
  CHECK_FALSE(c.framing());
  c.on_sctp(10000, 1, 0.2);
  REQUIRE(c.framing());
  CHECK(c.started_at() == 0.2);
  CHECK(c.loss() == doctest::Approx(1.0 / 10000));
  CHECK(c.redundancy() > 0);  // parity from the estimate, before the first report
}
