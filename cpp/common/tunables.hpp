// The numbers a maintainer may want to tune, each named once, with why it has
// the value it has. A component keeps its own in its section.
#pragma once

namespace anyio::tunables {

// --- cancel scopes and task groups ---------------------------------------------

// --- sync primitives ---------------------------------------------------------------

// --- memory object streams ---------------------------------------------------------

// --- worker threads ----------------------------------------------------------------

// Seconds an idle worker waits for a job before its thread exits
// (set_default_idle_timeout changes it for pools made later).
inline constexpr double kWorkerIdleTimeout = 10.0;
// Seconds one idle worker polls for the next job before sleeping
// (set_worker_spin). Polling only pays when a spare core runs the poller: with
// two cores or fewer it takes CPU time from the event loop thread it waits
// for (measured), so it is off below kWorkerSpinMinCores.
inline constexpr double kWorkerSpin = 50e-6;
inline constexpr unsigned kWorkerSpinMinCores = 3;
// Seconds a worker waiting for the loop's answer (from_thread, blocking
// portal calls) polls before sleeping (set_reply_spin). Unlike an idle worker
// it does not compete with the loop for the job it waits for; on two cores it
// still keeps its CPU from going idle, which on a virtual machine makes the
// loop's answer arrive tens of microseconds sooner (measured).
inline constexpr double kReplySpin = 50e-6;
inline constexpr unsigned kReplySpinMinCores = 2;
// CPU pause instructions between two looks of a polling thread.
inline constexpr int kSpinPausesPerPoll = 64;
// Milliseconds closing a pool waits for its idle workers to leave (so the
// thread count is back to normal when a run returns).
inline constexpr int kPoolCloseWaitMs = 200;
// A thread blocked on a from_thread request wakes this often (milliseconds)
// to check for signals and, for a worker, whether the loop has finished.
inline constexpr int kRequestRecheckWorkerMs = 100;
inline constexpr int kRequestRecheckForeignMs = 1000;

}  // namespace anyio::tunables
