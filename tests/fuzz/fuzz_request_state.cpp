// libFuzzer: unsealing a 2026-07-28 requestState token the client sent back.
#include "protocol/request_state.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const mcph::protocol::RequestStateSealer sealer;
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto opened = sealer.open(text, "tools/call\necho\n{}\n");
  if (opened) __builtin_trap();  // only the sealer's own tokens open (HMAC)
  // The sealer's own tokens carry any bytes and open only under their binding.
  const std::string token = sealer.seal(text, "b", std::chrono::seconds(60));
  auto back = sealer.open(token, "b");
  if (!back || *back != text) __builtin_trap();
  if (sealer.open(token, "other")) __builtin_trap();
  return 0;
}
