// The audit log: one JSON line per request, appended to a file (reopened on SIGHUP, for
// logrotate) or written to stderr. Lines are written whole, in one write each.
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "result.hpp"

namespace mcph::telemetry {

class AuditLog {
 public:
  // `target`: "stderr" or a file path (created 0600 if missing, appended to).
  static Result<std::unique_ptr<AuditLog>> open(const std::string& target);
  ~AuditLog();
  AuditLog(const AuditLog&) = delete;
  AuditLog& operator=(const AuditLog&) = delete;

  void write(std::string line);  // adds the newline
  // Opens the file again under its name (logrotate moved the old one away). Keeps writing
  // to the old one if that fails, and says why.
  Status reopen();

 private:
  explicit AuditLog(std::string target) : target_(std::move(target)) {}
  const std::string target_;
  std::mutex mutex_;
  int fd_ = -1;  // guarded by mutex_; 2 for stderr
};

}  // namespace mcph::telemetry
