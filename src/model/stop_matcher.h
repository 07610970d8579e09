// Stop strings over streamed text: decides which generated text is safe to
// show now and where generation must end.
//
// A stop string ends generation as soon as its last byte arrives; the text
// before it is emitted and the stop string itself (and anything after it) is
// not. Text that could still be the beginning of a stop string is held back
// until the next push proves otherwise. The result does not depend on how the
// text is split into pushes: it is what feeding it byte by byte would give
// (the first stop string to complete wins; of two completing on the same byte,
// the longer one, which starts earlier).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace aviary {

class StopMatcher {
 public:
  struct Result {
    std::string text;      // safe to emit now
    bool stopped = false;  // a stop string completed: generation must end
  };

  // Throws aviary::Error for an empty stop string (it would match at once).
  explicit StopMatcher(std::vector<std::string> stop_strings);

  // Appends generated text. After a stop, further pushes emit nothing.
  Result push(std::string_view text);

  // Releases the held-back tail when generation ends for another reason
  // (token limit, stop token). Empty after a stop.
  std::string flush();

  // Forgets held text and any stop, for a new generation.
  void reset();

  bool stopped() const { return stopped_; }
  const std::string& held() const { return held_; }

 private:
  size_t holdback_length() const;

  std::vector<std::string> stops_;
  size_t max_stop_size_ = 0;
  std::string held_;
  bool stopped_ = false;
};

}  // namespace aviary
