// HAProxy (Debian `haproxy`, 2.6) in front of mcp-host replicas, for the integration
// tests: round robin over the given loopback ports, no stickiness, each replica checked on
// /readyz, so one that cannot reach its store leaves the rotation. Started on a free port in
// the foreground, stopped (by PID) when the object goes.
#pragma once

#include <sys/socket.h>

#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "process.hpp"
#include "host_fixture.hpp"

namespace mcph::testing {

class HaProxy {
 public:
  explicit HaProxy(const std::vector<int>& replicas) : port_(free_port()) {
    const std::string cfg = dir_.str() + "/haproxy.cfg";
    std::ofstream out(cfg);
    // Only health-check changes are logged (to stderr, which the test reads on failure).
    out << "global\n  maxconn 2000\n  log stderr format short local0 notice\n"
        << "defaults\n  mode http\n  log global\n  option log-health-checks\n  timeout connect 2s\n  timeout client 60s\n  timeout server 60s\n"
        << "  option http-server-close\n"  // every request is balanced, as a client's connection is reused
        << "frontend mcp\n  bind 127.0.0.1:" << port_ << "\n  default_backend replicas\n"
        << "backend replicas\n  balance roundrobin\n  option httpchk GET /readyz\n  http-check expect status 200\n";
    for (size_t i = 0; i < replicas.size(); ++i) {
      out << "  server r" << i << " 127.0.0.1:" << replicas[i] << " check inter 300ms fall 2 rise 1\n";
    }
    out.close();
    process_ = std::make_unique<Process>(std::vector<std::string>{"/usr/sbin/haproxy", "-db", "-f", cfg});
    const bool up = eventually([&] {
      const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      a.sin_port = htons(static_cast<uint16_t>(port_));
      const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
      ::close(fd);
      return ok;
    }, std::chrono::seconds(10));
    EXPECT_TRUE(up) << "haproxy did not start (scripts/setup.sh installs it):\n" << process_->stderr_text();
  }

  int port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  Process& process() { return *process_; }

 private:
  TempDir dir_;
  int port_;
  std::unique_ptr<Process> process_;
};

}  // namespace mcph::testing
