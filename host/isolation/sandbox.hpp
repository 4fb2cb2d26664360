// sandbox: strict for an isolated plugin's child process (Linux, libseccomp). Installed
// after the plugin's create() returned: from then on the child cannot open or change
// files, create sockets, start programs or processes, or trace others; what it needs from
// the outside world comes through the host's services (state, HTTP) over the socketpair it
// already holds. Threads, memory, time and the open socketpair keep working. A forbidden
// system call fails with EPERM (it does not kill the process), so a plugin sees an error it
// can report.
#pragma once

#include "result.hpp"

namespace mcph::isolation {

Status enter_strict_sandbox();

}  // namespace mcph::isolation
