#include "plugins/library.hpp"

#include <dlfcn.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <filesystem>
#include <mutex>
#include <unordered_map>

#include <boost/dll/runtime_symbol_info.hpp>

namespace mcph::plugins {
namespace fs = std::filesystem;

namespace {

std::string str(mcph_str s) { return s.data ? std::string(s.data, s.len) : std::string(); }

bool looks_like_path(const std::string& spec) {
  return spec.find('/') != std::string::npos ||
         (spec.size() > 3 && spec.compare(spec.size() - 3, 3, ".so") == 0);
}

std::string version_text(unsigned major, unsigned minor) {
  return std::to_string(major) + "." + std::to_string(minor);
}

// Libraries are shared between instances of the same file (two Codesphere teams load the
// library once). Loading happens on the main thread only (Boost.DLL: concurrent dlopen is
// not safe everywhere), the mutex just keeps the cache honest.
std::mutex g_cache_mutex;
std::unordered_map<std::string, std::weak_ptr<Library>> g_cache;

// Why `path` cannot be a shared library, or "": checked before dlopen, whose own answer for
// a text file is a bare errno ("Bad file descriptor").
std::string not_a_library(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  char magic[4] = {};
  if (!in.read(magic, sizeof magic)) return "the file is too short to be a shared library";
  if (std::memcmp(magic, "\x7f" "ELF", 4) != 0) return "not a shared library (no ELF header); build the plugin with add_library(... MODULE)";
  return "";
}

// The dynamic loader's own words (a missing dependency, a wrong architecture), which
// Boost.DLL turns into an errno text.
std::string loader_error(const std::string& path, const std::string& fallback) {
  dlerror();
  if (void* h = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL)) {
    dlclose(h);
    return fallback;
  }
  const char* why = dlerror();
  return why != nullptr ? why : fallback;
}

}  // namespace

std::string Library::name() const { return str(descriptor_.name); }
std::string Library::version() const { return str(descriptor_.version); }

std::vector<std::string> default_search_dirs(const std::vector<std::string>& configured) {
  std::vector<std::string> dirs = configured;
  std::error_code ec;
  fs::path exe_dir = boost::dll::program_location(ec).parent_path();
  if (!ec) {
    dirs.push_back((exe_dir / "plugins").string());
    dirs.push_back((exe_dir.parent_path() / "lib" / "mcp-host" / "plugins").lexically_normal().string());
  }
  return dirs;
}

FileId file_id(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return {};
  return FileId{static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino), static_cast<uint64_t>(st.st_size),
                static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec};
}

namespace {

// The identity of the file each path was first dlopen()ed as. glibc matches an already
// loaded object by its path before it looks at the file, and a C++ library with unique
// symbols is never unloaded at all: once a path was loaded, a newer file there is only
// reached under another name.
std::unordered_map<std::string, FileId> g_first_loaded;  // guarded by g_cache_mutex

// Copies `path` into a new private folder and returns the copy's path (the caller loads it,
// then removes it: the mapping outlives the file).
Result<std::string> private_copy(const std::string& path) {
  std::string dir = (fs::temp_directory_path() / "mcph-lib-XXXXXX").string();
  if (::mkdtemp(dir.data()) == nullptr) return Error{std::string("cannot make a folder for a fresh copy: ") + std::strerror(errno)};
  const std::string copy = dir + "/" + fs::path(path).filename().string();
  std::error_code ec;
  fs::copy_file(path, copy, ec);
  if (ec) {
    fs::remove_all(dir, ec);
    return Error{"cannot copy it for a fresh load: " + ec.message()};
  }
  return copy;
}

// Where `spec` may be, in the order looked at.
std::vector<std::string> candidates(const std::string& spec, const std::vector<std::string>& search_dirs) {
  if (looks_like_path(spec)) return {spec};
  std::vector<std::string> out;
  for (const auto& dir : search_dirs) {
    out.push_back((fs::path(dir) / ("lib" + spec + ".so")).string());
    out.push_back((fs::path(dir) / (spec + ".so")).string());
  }
  return out;
}

}  // namespace

std::string Library::resolve(const std::string& spec, const std::vector<std::string>& search_dirs) {
  for (const auto& c : candidates(spec, search_dirs)) {
    std::error_code ec;
    if (fs::is_regular_file(c, ec)) return fs::canonical(c, ec).string();
  }
  return "";
}

Result<std::shared_ptr<Library>> Library::load(const std::string& spec,
                                               const std::vector<std::string>& search_dirs) {
  const std::string found = resolve(spec, search_dirs);
  if (found.empty()) {
    const auto tried_paths = candidates(spec, search_dirs);
    std::string tried;
    for (const auto& c : tried_paths) tried += "\n    " + c;
    if (tried_paths.empty()) tried = " (no search folders)";
    return Error{"plugin library '" + spec + "' not found; tried:" + tried};
  }

  std::lock_guard lock(g_cache_mutex);
  const FileId id = file_id(found);
  if (auto cached = g_cache[found].lock(); cached && cached->id_ == id) return cached;

  std::shared_ptr<Library> lib(new Library());
  lib->path_ = found;
  lib->id_ = id;
  if (std::string why = not_a_library(found); !why.empty()) return Error{"cannot load plugin library " + found + ": " + why};
  std::string load_from = found;
  auto first = g_first_loaded.try_emplace(found, id).first;
  if (first->second != id) {  // replaced on disk since this path was loaded
    auto copy = private_copy(found);
    if (!copy) return Error{"cannot load the new " + found + ": " + copy.error()};
    load_from = *copy;
  }
  boost::dll::fs::error_code ec;
  lib->lib_.load(load_from, boost::dll::load_mode::rtld_now | boost::dll::load_mode::rtld_local, ec);
  if (load_from != found) {
    std::error_code ignored;
    fs::remove_all(fs::path(load_from).parent_path(), ignored);
  }
  if (ec) return Error{"cannot load plugin library " + found + ": " + loader_error(found, ec.message())};
  if (!lib->lib_.has(MCPH_ENTRY_SYMBOL)) {
    return Error{found + " is not an mcp-host plugin: it exports no '" MCPH_ENTRY_SYMBOL
                 "' function (define it with MCPH_PLUGIN_EXPORT)"};
  }
  auto entry = lib->lib_.get<const mcph_plugin_descriptor*(uint16_t, uint16_t)>(MCPH_ENTRY_SYMBOL);
  const mcph_plugin_descriptor* d = entry(MCPH_ABI_MAJOR, MCPH_ABI_MINOR);
  const std::string host_version = version_text(MCPH_ABI_MAJOR, MCPH_ABI_MINOR);
  if (d == nullptr) {
    return Error{found + " refused to load: its entry returned no descriptor for host ABI " +
                 host_version + " (the plugin may need a newer host)"};
  }
  if (d->struct_size < offsetof(mcph_plugin_descriptor, abi_minor) + sizeof(d->abi_minor)) {
    return Error{found + " returned a malformed descriptor (struct_size " +
                 std::to_string(d->struct_size) + ")"};
  }
  if (d->abi_major != MCPH_ABI_MAJOR) {
    return Error{found + " was built for plugin ABI " + version_text(d->abi_major, d->abi_minor) +
                 ", but this host speaks ABI " + host_version +
                 "; rebuild the plugin against this host's headers"};
  }
  // ABI rule 3: copy min(size, ours) into a zeroed struct; unknown fields read as absent.
  std::memcpy(&lib->descriptor_, d, std::min<size_t>(d->struct_size, sizeof(mcph_plugin_descriptor)));
  if (lib->descriptor_.create == nullptr || lib->descriptor_.destroy == nullptr) {
    return Error{found + ": the descriptor has no create or destroy function"};
  }
  g_cache[found] = lib;
  return lib;
}

}  // namespace mcph::plugins
