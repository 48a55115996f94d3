#include "src/fec/controller.hpp"

#include <algorithm>
#include <cmath>

namespace fec {

double residual_loss(std::size_t k, std::size_t m, double p) {
  if (k == 0 || p <= 0) return 0;
  if (p >= 1) return 1;
  std::size_t n = k + m;
  // Binomial terms from L = 0 upwards in log space (n <= a few hundred).
  double log_p = std::log(p), log_q = std::log1p(-p), log_choose = 0, residual = 0;
  for (std::size_t l = 0; l <= n; ++l) {
    if (l > 0)
      log_choose += std::log(static_cast<double>(n - l + 1)) - std::log(static_cast<double>(l));
    double term =
        std::exp(log_choose + static_cast<double>(l) * log_p + static_cast<double>(n - l) * log_q);
    if (l > m) residual += term * static_cast<double>(l) / static_cast<double>(n);
  }
  return residual;
}

std::size_t parity_for(std::size_t k, double p, double target, std::size_t max_m) {
  for (std::size_t m = 0; m < max_m; ++m)
    if (residual_loss(k, m, p) <= target) return m;
  return max_m;
}

Controller::Controller(ControllerOptions options) : options_(options) {}

void Controller::expire(double now) {
  while (!samples_.empty() && samples_.front().at < now - options_.window) samples_.pop_front();
}

void Controller::on_sctp(std::uint64_t sent, std::uint64_t retransmitted, double now) {
  if (framing_) return;
  if (have_sctp_ && sent >= last_sent_ && retransmitted >= last_retransmitted_)
    samples_.push_back({now, sent - last_sent_, retransmitted - last_retransmitted_});
  have_sctp_ = true;
  last_sent_ = sent;
  last_retransmitted_ = retransmitted;
  expire(now);
  std::uint64_t total = 0, again = 0;
  for (const Sample& s : samples_) {
    total += s.a;
    again += s.b;
  }
  if (again >= options_.start_retransmits) {
    framing_ = true;
    started_at_ = now;
    loss_ = total ? static_cast<double>(again) / static_cast<double>(total) : 0;
    samples_.clear();
    update();
  }
}

void Controller::on_report(std::uint32_t received, std::uint32_t lost, double now) {
  if (!framing_) return;
  if (have_report_) {
    std::uint32_t dr = received - last_received_, dl = lost - last_lost_;  // mod 2^32
    samples_.push_back({now, dr, dl});
  }
  have_report_ = true;
  last_received_ = received;
  last_lost_ = lost;
  expire(now);
  std::uint64_t got = 0, missing = 0;
  for (const Sample& s : samples_) {
    got += s.a;
    missing += s.b;
  }
  // Until the first reports cover some traffic, keep the estimate framing started with.
  if (got + missing >= 100)
    loss_ = static_cast<double>(missing) / static_cast<double>(got + missing);
  update();
}

void Controller::update() {
  double p = std::min(1.0, loss_ * options_.margin);
  for (std::size_t n = 1; n < table_.size(); ++n) {
    std::size_t cap = 0;
    if (options_.max_overhead > 0)
      cap = std::min<std::size_t>(
          16, std::max<std::size_t>(2, static_cast<std::size_t>(std::floor(
                                           options_.max_overhead * static_cast<double>(n)))));
    table_[n] = static_cast<std::uint8_t>(p > 0 ? parity_for(n, p, options_.target, cap) : 0);
  }
  std::size_t block = std::min<std::size_t>(options_.block, table_.size() - 1);
  redundancy_ = static_cast<double>(table_[block]) / static_cast<double>(block);
}

RestartVerdict restart_verdict(const RestartEvidence& e, std::uint32_t min_losses,
                               double max_wait) {
  if (e.lost < min_losses && e.waited < max_wait) return RestartVerdict::wait;
  std::uint64_t lost = e.lost, left = e.unrecovered, all = std::uint64_t{e.received} + e.lost;
  return left * 2 <= lost && lost * 20 <= all ? RestartVerdict::restart : RestartVerdict::refuse;
}

}  // namespace fec
