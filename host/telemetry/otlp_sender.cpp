// The OTLP sender, on cpp-httplib: part of the HTTP stack (http_stack/).
#include <httplib.h>
#include <spdlog/spdlog.h>

#include "telemetry/otlp.hpp"

namespace mcph::telemetry {
namespace {

class HttplibOtlpSender final : public OtlpSender {
 public:
  HttplibOtlpSender(const Collector& collector, std::string_view signal);
  bool post(const std::string& body, std::string_view what) override;

 private:
  void connect();
  const Collector& collector_;
  std::string host_, path_;  // scheme://host:port, and <base path>/v1/<signal>
  std::unique_ptr<httplib::Client> client_;
};

HttplibOtlpSender::HttplibOtlpSender(const Collector& collector, std::string_view signal) : collector_(collector) {
  // http://host:port/base -> client "http://host:port", path "/base/v1/<signal>".
  const std::string& e = collector_.endpoint;
  const size_t scheme_end = e.find("://") + 3;
  const size_t slash = e.find('/', scheme_end);
  host_ = e.substr(0, slash);
  std::string base = slash == std::string::npos ? "" : e.substr(slash);
  while (!base.empty() && base.back() == '/') base.pop_back();
  path_ = base + "/v1/" + std::string(signal);
}

void HttplibOtlpSender::connect() {
  client_ = std::make_unique<httplib::Client>(host_);
  client_->set_connection_timeout(collector_.timeout);
  client_->set_read_timeout(collector_.timeout);
  client_->set_write_timeout(collector_.timeout);
  client_->set_keep_alive(true);
}

bool HttplibOtlpSender::post(const std::string& body, std::string_view what) {
  if (!client_) connect();
  httplib::Headers headers;
  for (const auto& [k, v] : collector_.headers) headers.emplace(k, v);
  auto res = client_->Post(path_, headers, body, "application/json");
  if (!res && res.error() != httplib::Error::Connection) {
    // The collector may have closed the connection while it was idle: once more on a new one.
    connect();
    res = client_->Post(path_, headers, body, "application/json");
  }
  if (res && res->status >= 200 && res->status < 300) return true;
  if (res) {
    spdlog::debug("otlp export of {}: HTTP {}", what, res->status);
  } else {
    spdlog::debug("otlp export of {}: {}", what, httplib::to_string(res.error()));
    client_.reset();  // reconnect next time
  }
  return false;
}

}  // namespace

std::unique_ptr<OtlpSender> OtlpSender::connect(const Collector& collector, std::string_view signal) {
  return std::make_unique<HttplibOtlpSender>(collector, signal);
}

}  // namespace mcph::telemetry
