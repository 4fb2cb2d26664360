// The host log: stderr only (stdout belongs to the stdio transport), text or JSON lines.
#pragma once

#include <string>

#include "result.hpp"

namespace mcph::services {

// level: trace|debug|info|warn|error|off; format: text|json.
Status setup_logging(const std::string& level, const std::string& format);

}  // namespace mcph::services
