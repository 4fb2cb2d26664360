// mcp-host opens its HTTP stack, mcp-host-http.so, the first time it is needed (see
// http_stack.hpp for why). It is found as mcp-host-plugin is: beside the binary, one folder
// up (the build tree), or in ../lib/mcp-host (installed); MCP_HOST_HTTP_MODULE names
// another.
#include <dlfcn.h>

#include <boost/dll/runtime_symbol_info.hpp>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "http_stack/http_stack.hpp"
#include "version.hpp"

namespace mcph::http_stack {
namespace {

namespace fs = std::filesystem;
constexpr const char* kModule = "mcp-host-http.so";

std::string module_path() {
  if (const char* env = std::getenv("MCP_HOST_HTTP_MODULE"); env != nullptr && *env != '\0') return env;
  std::error_code ec;
  const fs::path exe_dir = boost::dll::program_location(ec).parent_path();
  if (ec) return "";
  for (const fs::path& candidate :
       {exe_dir / kModule, exe_dir.parent_path() / kModule, exe_dir.parent_path() / "lib" / "mcp-host" / kModule}) {
    if (fs::is_regular_file(candidate, ec)) return candidate.lexically_normal().string();
  }
  return "";
}

Result<const Table*> load() {
  const std::string path = module_path();
  if (path.empty()) {
    return Error{std::string("the HTTP stack (") + kModule +
                 ") was not found beside mcp-host, nor in ../lib/mcp-host; set MCP_HOST_HTTP_MODULE to its path"};
  }
  // RTLD_NOW: a symbol it needs and mcp-host lacks fails here, not in the middle of a call.
  // RTLD_LOCAL: nothing else binds to it; it binds to mcp-host and its own libraries.
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);  // kept open for the process's life
  if (handle == nullptr) {
    const char* why = dlerror();
    return Error{"cannot open the HTTP stack " + path + ": " + (why != nullptr ? why : "unknown error")};
  }
  auto entry = reinterpret_cast<const Table* (*)()>(dlsym(handle, "mcph_http_stack"));
  const Table* table = entry != nullptr ? entry() : nullptr;
  if (table == nullptr) return Error{path + " is not an mcp-host HTTP stack (no mcph_http_stack)"};
  if (std::strcmp(table->version, kVersion) != 0) {
    return Error{path + " belongs to mcp-host " + table->version + ", not to this mcp-host " + kVersion +
                 ": install the two from one build"};
  }
  return table;
}

}  // namespace

Result<const Table*> open() {
  static const Result<const Table*> opened = load();
  return opened;
}

}  // namespace mcph::http_stack
