#include "src/transport/udp/inflight_cap.hpp"

#include <algorithm>

namespace transport::udp {

InflightCap::InflightCap(InflightCapOptions options) : options_(options) {}

bool window_limited(const SendState& send, std::uint64_t cap) {
  auto flight_max = std::uint64_t{send.flight_chunks} * send.chunk_max;
  if (send.buffered <= flight_max) return false;  // all of it may be in flight: nothing waits
  std::uint64_t window = cap > 0 ? std::min(send.cwnd, cap) : send.cwnd;
  return 2 * flight_max >= window;
}

void InflightCap::push_rate(double now, double rate) {
  while (!rates_.empty() && rates_.back().value <= rate) rates_.pop_back();
  rates_.push_back({now, rate});
}

void InflightCap::sample(double now, std::uint64_t acked, double srtt, bool limited) {
  if (!started_) {
    started_ = true;
    interval_start_ = now;
    interval_acked_ = acked;
  }
  // RTT: a sliding minimum (values only ever pushed in increasing order of time, the deque keeps
  // increasing values).
  if (srtt > 0) {
    bool high = !rtts_.empty() && srtt > 2.5 * rtts_.front().value;
    if (!high) {
      high_since_ = -1;
    } else if (high_since_ < 0) {
      high_since_ = now;
    } else if (now - high_since_ >= options_.rtt_raise) {
      rtts_.clear();  // the path's RTT rose: start over from here
      high_since_ = -1;
      full_ = false, full_bandwidth_ = 0, flat_intervals_ = 0;
    }
    while (!rtts_.empty() && rtts_.back().value >= srtt) rtts_.pop_back();
    rtts_.push_back({now, srtt});
  }
  while (!rtts_.empty() && rtts_.front().at < now - options_.rtt_window && rtts_.size() > 1)
    rtts_.pop_front();
  rtt_min_ = rtts_.empty() ? 0 : rtts_.front().value;
  // Delivery rate over intervals of at least `interval` and two RTTs; until the pipe is full,
  // of one RTT (at least `startup_interval`).
  interval_limited_ = interval_limited_ || limited;
  double length = now - interval_start_;
  double shortest = full_ ? std::max(options_.interval, 2 * rtt_min_)
                          : std::max(options_.startup_interval, rtt_min_);
  bool ended = false;
  if (length >= shortest && acked >= interval_acked_) {
    push_rate(now, static_cast<double>(acked - interval_acked_) / length);
    interval_start_ = now;
    interval_acked_ = acked;
    ended = true;
  } else if (acked < interval_acked_) {  // a new association: count afresh
    interval_start_ = now;
    interval_acked_ = acked;
    interval_limited_ = false;
    full_ = false, full_bandwidth_ = 0, flat_intervals_ = 0;
    recent_.clear();
  }
  // Until the pipe is full, also the rate of the last `shortest` seconds at every sample (a
  // sliding window): with intervals alone the cap was up to an interval behind a slow start,
  // and held it below a doubling per RTT (an interval in which the rate doubles averages 0.72 of
  // its end).
  if (full_) {
    recent_.clear();
  } else {
    recent_.push_back({now, static_cast<double>(acked)});
    while (recent_.size() > 2 && recent_[1].at <= now - shortest) recent_.pop_front();
    const Point& from = recent_.front();
    double bytes = static_cast<double>(acked) - from.value;
    if (now - from.at >= shortest && bytes >= 0) push_rate(now, bytes / (now - from.at));
  }
  while (!rates_.empty() && rates_.front().at < now - options_.bandwidth_window &&
         rates_.size() > 1)
    rates_.pop_front();
  bandwidth_ = rates_.empty() ? 0 : rates_.front().value;
  if (ended) {
    if (full_ && bandwidth_ >= 2 * full_at_) full_ = false;  // it was not: fill it again
    if (bandwidth_ >= options_.full_growth * full_bandwidth_) {
      full_bandwidth_ = bandwidth_;
      flat_intervals_ = 0;
    } else if (interval_limited_ && !full_ && ++flat_intervals_ >= options_.full_intervals) {
      full_ = true;
      full_at_ = bandwidth_;
    }
    interval_limited_ = false;
  }
  if (rtt_min_ <= 0 || bandwidth_ <= 0) {
    cap_ = 0;
    return;
  }
  // Once full: a quarter of rtt_min of queue, but at least `steady_headroom` seconds, and never
  // more than while filling.
  double filling = options_.gain * rtt_min_;
  double time = full_ ? std::max(options_.steady_gain * rtt_min_,
                                 std::min(rtt_min_ + options_.steady_headroom, filling))
                      : filling;
  cap_ = std::max(options_.min_cap, static_cast<std::uint64_t>(bandwidth_ * time));
}

}  // namespace transport::udp
