// reload.watch: calls back when any of a set of files changes (inotify, Linux). It watches
// their folders, not the files, so an editor's save-by-rename and a Kubernetes ConfigMap's
// symlink swap ("..data") are seen too; a burst of events becomes one call, 200 ms after
// the last.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "result.hpp"

namespace mcph::reload {

class Watcher {
 public:
  static Result<std::unique_ptr<Watcher>> start(const std::vector<std::string>& files, std::function<void()> changed);
  ~Watcher();  // stops; waits for a callback that runs
  Watcher(const Watcher&) = delete;
  Watcher& operator=(const Watcher&) = delete;

 private:
  Watcher() = default;
  void run();

  int inotify_ = -1;
  int wake_[2] = {-1, -1};               // a byte here stops run()
  std::vector<std::string> names_;        // base names of the files watched
  std::function<void()> changed_;
  std::thread thread_;
};

}  // namespace mcph::reload
