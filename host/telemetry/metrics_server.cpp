#include "telemetry/metrics_server.hpp"

#include <httplib.h>

#include <thread>

namespace mcph::telemetry {
namespace {

class HttplibMetricsServer final : public MetricsServer {
 public:
  ~HttplibMetricsServer() override {
    // stop() only reaches a server that listens: wait (briefly) for it to start.
    for (int i = 0; i < 1000 && !server_->is_running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    server_->stop();
    if (thread_.joinable()) thread_.join();
  }
  const std::string& url() const override { return url_; }

  std::unique_ptr<httplib::Server> server_ = std::make_unique<httplib::Server>();
  std::string url_;
  std::thread thread_;
};

}  // namespace

Result<std::unique_ptr<MetricsServer>> MetricsServer::start(const std::string& listen, std::function<std::string()> metrics) {
  const size_t colon = listen.rfind(':');
  if (colon == std::string::npos) return Error{"telemetry.metrics_listen must be host:port, not '" + listen + "'"};
  std::string host = listen.substr(0, colon);
  int port = 0;
  try {
    port = std::stoi(listen.substr(colon + 1));
  } catch (...) {
    return Error{"telemetry.metrics_listen must be host:port, not '" + listen + "'"};
  }
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  auto s = std::make_unique<HttplibMetricsServer>();
  s->server_->new_task_queue = [] { return new httplib::ThreadPool(1); };  // a scrape at a time is plenty
  s->server_->Get("/metrics", [metrics = std::move(metrics)](const httplib::Request&, httplib::Response& res) {
    res.set_content(metrics(), "text/plain; version=0.0.4; charset=utf-8");
  });
  const int bound = port == 0 ? s->server_->bind_to_any_port(host) : (s->server_->bind_to_port(host, port) ? port : -1);
  if (bound < 0) return Error{"telemetry.metrics_listen: cannot listen on " + listen};
  const std::string shown = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  s->url_ = "http://" + shown + ":" + std::to_string(bound) + "/metrics";
  httplib::Server* server = s->server_.get();
  s->thread_ = std::thread([server] { server->listen_after_bind(); });
  return std::unique_ptr<MetricsServer>(std::move(s));
}

}  // namespace mcph::telemetry
