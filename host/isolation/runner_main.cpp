// mcp-host-plugin: runs one plugin instance for mcp-host (isolation: process). mcp-host
// starts it with the socketpair as fd 3; it is not meant to be run by hand.
#include <fcntl.h>
#include <signal.h>

#include <cstdio>
#include <cstring>

#include "isolation/child.hpp"

int main(int argc, char** argv) {
  sigset_t none;  // mcp-host starts it with every signal blocked (see Spawner in process_instance.cpp)
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  const bool help = argc > 1 && (std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0);
  if (help || fcntl(3, F_GETFD) < 0) {
    std::fprintf(help ? stdout : stderr,
                 "mcp-host-plugin runs one plugin instance in its own process for mcp-host\n"
                 "(plugins[].isolation: process in the YAML). mcp-host starts it; it is not run by hand.\n");
    return help ? 0 : 2;
  }
  return mcph::isolation::serve_child(3);
}
