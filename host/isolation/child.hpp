// The child side of isolation: process. mcp-host-plugin loads one plugin library with the
// host's own loader and runner (plugins/in_process), and serves its calls over the
// socketpair its host gave it, forwarding every host service (state, HTTP, users' stored
// credentials, logs, progress, resource updates) to the host: the child holds no database
// handle and no other instance's or user's secrets.
#pragma once

namespace mcph::isolation {

// Serves the instance the host describes in its first frame until the host says shutdown
// or goes away. Returns the process's exit status.
int serve_child(int fd);

}  // namespace mcph::isolation
