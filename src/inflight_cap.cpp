#include "src/inflight_cap.hpp"

#include <algorithm>

namespace transport {

InflightCap::InflightCap(InflightCapOptions options) : options_(options) {}

void InflightCap::sample(double now, std::uint64_t acked, double srtt) {
  if (!started_) {
    started_ = true;
    interval_start_ = now;
    interval_acked_ = acked;
  }
  // RTT: a sliding minimum (values only ever pushed in increasing order of time, the deque keeps
  // increasing values).
  if (srtt > 0) {
    bool high = !rtts_.empty() && srtt > (options_.gain + 0.5) * rtts_.front().value;
    if (!high) {
      high_since_ = -1;
    } else if (high_since_ < 0) {
      high_since_ = now;
    } else if (now - high_since_ >= options_.rtt_raise) {
      rtts_.clear();  // the path's RTT rose: start over from here
      high_since_ = -1;
    }
    while (!rtts_.empty() && rtts_.back().value >= srtt) rtts_.pop_back();
    rtts_.push_back({now, srtt});
  }
  while (!rtts_.empty() && rtts_.front().at < now - options_.rtt_window && rtts_.size() > 1)
    rtts_.pop_front();
  rtt_min_ = rtts_.empty() ? 0 : rtts_.front().value;
  // Delivery rate over intervals of at least `interval` and one RTT.
  double length = now - interval_start_;
  if (length >= std::max(options_.interval, rtt_min_) && acked >= interval_acked_) {
    double rate = static_cast<double>(acked - interval_acked_) / length;
    while (!rates_.empty() && rates_.back().value <= rate) rates_.pop_back();
    rates_.push_back({now, rate});
    interval_start_ = now;
    interval_acked_ = acked;
  } else if (acked < interval_acked_) {  // a new association: count afresh
    interval_start_ = now;
    interval_acked_ = acked;
  }
  while (!rates_.empty() && rates_.front().at < now - options_.bandwidth_window &&
         rates_.size() > 1)
    rates_.pop_front();
  bandwidth_ = rates_.empty() ? 0 : rates_.front().value;
  if (rtt_min_ <= 0 || bandwidth_ <= 0) {
    cap_ = 0;
    return;
  }
  cap_ =
      std::max(options_.min_cap, static_cast<std::uint64_t>(options_.gain * bandwidth_ * rtt_min_));
}

}  // namespace transport
