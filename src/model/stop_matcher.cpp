#include "model/stop_matcher.h"

#include <algorithm>
#include <utility>

#include "util/error.h"

namespace aviary {
namespace {

struct Match {
  size_t begin = std::string::npos;
  size_t end = std::string::npos;
};

// The match that completes first (smallest end); on equal ends the longer
// stop string, i.e. the smaller begin. For one stop string its first
// occurrence is also its earliest end, so find() per string is enough.
Match first_completed(const std::string& text, const std::vector<std::string>& stops) {
  Match best;
  for (const std::string& stop : stops) {
    const size_t begin = text.find(stop);
    if (begin == std::string::npos) continue;
    const size_t end = begin + stop.size();
    if (end < best.end || (end == best.end && begin < best.begin)) best = {begin, end};
  }
  return best;
}

bool is_proper_prefix_of_any(std::string_view tail, const std::vector<std::string>& stops) {
  for (const std::string& stop : stops)
    if (tail.size() < stop.size() && std::string_view(stop).starts_with(tail)) return true;
  return false;
}

}  // namespace

StopMatcher::StopMatcher(std::vector<std::string> stop_strings) : stops_(std::move(stop_strings)) {
  for (const std::string& stop : stops_) {
    if (stop.empty()) throw error_in("stop strings", "a stop string must not be empty");
    max_stop_size_ = std::max(max_stop_size_, stop.size());
  }
}

StopMatcher::Result StopMatcher::push(std::string_view text) {
  if (stopped_) return {"", true};
  held_.append(text);
  const Match match = first_completed(held_, stops_);
  if (match.begin != std::string::npos) {
    stopped_ = true;
    Result result{held_.substr(0, match.begin), true};
    held_.clear();
    return result;
  }
  // Hold only the longest tail that a later push could still complete; any
  // stop string starting before it has already failed to match.
  const size_t keep = holdback_length();
  Result result{held_.substr(0, held_.size() - keep), false};
  held_.erase(0, held_.size() - keep);
  return result;
}

// Longest suffix of held_ that is a proper prefix of some stop string. For
// valid UTF-8 stop strings it starts on a lead byte, so emitted text never
// ends inside a multi-byte character that held_ itself completed.
size_t StopMatcher::holdback_length() const {
  const std::string_view held(held_);
  // A proper prefix is shorter than the longest stop string.
  const size_t longest = std::min(held.size(), max_stop_size_ > 0 ? max_stop_size_ - 1 : 0);
  for (size_t len = longest; len > 0; --len)
    if (is_proper_prefix_of_any(held.substr(held.size() - len), stops_)) return len;
  return 0;
}

std::string StopMatcher::flush() {
  std::string out = std::move(held_);
  held_.clear();
  return out;
}

void StopMatcher::reset() {
  held_.clear();
  stopped_ = false;
}

}  // namespace aviary
