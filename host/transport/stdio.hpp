// stdio transport: one JSON-RPC message per line on stdin, answers and notifications one
// per line on stdout (nothing else ever goes there; logs go to stderr). Calls run
// concurrently, so progress and cancellation work: a quick tool's call on the reading
// thread itself (relieved by another if it runs long), the others on the engine's workers.
#pragma once

#include <memory>

#include "protocol/engine.hpp"

namespace mcph::transport {

class StdioTransport {
 public:
  explicit StdioTransport(protocol::Engine& engine, int in_fd = 0, int out_fd = 1);
  ~StdioTransport();

  // Reads until end of input or stop(). Calls still running keep their reply channel and
  // answer when they finish, so destroy the engine (which waits for them) before this.
  // The session is over when it returns: it ends (and its duration is recorded) once
  // those calls finished.
  void run();
  // Makes run() return soon. Thread-safe (called from the signal thread).
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mcph::transport
