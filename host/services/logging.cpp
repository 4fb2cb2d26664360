#include "services/logging.hpp"

#include <chrono>

#include <nlohmann/json.hpp>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "json/bounded.hpp"

namespace mcph::services {
namespace {

// One JSON object per line, message escaped properly (a pattern cannot escape).
class JsonFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    auto t = std::chrono::system_clock::to_time_t(msg.time);
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(msg.time.time_since_epoch()).count() % 1000;
    std::tm tm{};
    gmtime_r(&t, &tm);
    char ts[64];
    std::snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                  tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
    nlohmann::json line{{"time", ts},
                        {"level", spdlog::level::to_string_view(msg.level).data()},
                        {"msg", std::string(msg.payload.data(), msg.payload.size())}};
    std::string text = json_text::dump(line);
    text.push_back('\n');
    dest.append(text.data(), text.data() + text.size());
  }
  std::unique_ptr<spdlog::formatter> clone() const override { return std::make_unique<JsonFormatter>(); }
};

}  // namespace

Status setup_logging(const std::string& level, const std::string& format) {
  auto lvl = spdlog::level::from_str(level);
  if (lvl == spdlog::level::off && level != "off") return Error{"unknown log level '" + level + "'"};
  auto logger = std::make_shared<spdlog::logger>("mcp-host", std::make_shared<spdlog::sinks::stderr_sink_mt>());
  if (format == "json") {
    logger->set_formatter(std::make_unique<JsonFormatter>());
  } else if (format == "text") {
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  } else {
    return Error{"unknown log format '" + format + "' (text or json)"};
  }
  logger->set_level(lvl);
  logger->flush_on(spdlog::level::trace);  // stderr is unbuffered anyway; never lose a line
  spdlog::set_default_logger(logger);
  return Ok{};
}

}  // namespace mcph::services
