// The numbers a maintainer may want to tune, each named once, with why it has
// the value it has. A component keeps its own in its section.
#pragma once

namespace anyio::tunables {

// --- cancel scopes and task groups ---------------------------------------------

// --- sync primitives ---------------------------------------------------------------

// --- memory object streams ---------------------------------------------------------

// --- worker threads ----------------------------------------------------------------

}  // namespace anyio::tunables
