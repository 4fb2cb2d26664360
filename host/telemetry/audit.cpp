#include "telemetry/audit.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace mcph::telemetry {
namespace {

Result<int> open_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return Error{"audit log " + path + ": " + std::strerror(errno)};
  return fd;
}

}  // namespace

Result<std::unique_ptr<AuditLog>> AuditLog::open(const std::string& target) {
  std::unique_ptr<AuditLog> log(new AuditLog(target));
  if (target == "stderr") {
    log->fd_ = STDERR_FILENO;
  } else {
    auto fd = open_file(target);
    if (!fd) return Error{fd.error()};
    log->fd_ = *fd;
  }
  return log;
}

AuditLog::~AuditLog() {
  if (fd_ > STDERR_FILENO) ::close(fd_);
}

void AuditLog::write(std::string line) {
  line += '\n';
  std::lock_guard lock(mutex_);
  // O_APPEND: each line lands whole at the end, even beside another writer.
  for (size_t done = 0; done < line.size();) {
    const ssize_t n = ::write(fd_, line.data() + done, line.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // a full disk loses lines, never a call
    done += static_cast<size_t>(n);
  }
}

Status AuditLog::reopen() {
  if (target_ == "stderr") return Ok{};
  auto fd = open_file(target_);
  if (!fd) return Error{fd.error()};
  std::lock_guard lock(mutex_);
  ::close(fd_);
  fd_ = *fd;
  return Ok{};
}

}  // namespace mcph::telemetry
