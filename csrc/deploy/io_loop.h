// The runner's main loop: reads input lines (stdin or --input, text.h's input policy), batches them (classify and
// token: up to --batch-size, a partial batch as soon as no more input is waiting), answers each and writes the
// output.
#pragma once

#include "session.h"

namespace bmf {

// Answers every line of the input; returns the exit code (0 ok, 1 failure at a line, 2 unreadable --input or
// unwritable --timing file), having printed one error line to stderr when not 0.
int run_io_loop(Session& s);

}  // namespace bmf
