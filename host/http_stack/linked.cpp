// Tests, fuzz targets and benchmarks link the HTTP stack (mcph_core in host/CMakeLists.txt):
// open() is its table, and never fails.
#include "http_stack/http_stack.hpp"

extern "C" const mcph::http_stack::Table* mcph_http_stack();  // table.cpp

namespace mcph::http_stack {

Result<const Table*> open() { return mcph_http_stack(); }

}  // namespace mcph::http_stack
