// The kernels' thread count, read and set at run time (see Pool in common.h).

#include "common.h"

extern "C" {

// Threads the kernels run on, the calling thread included.
int MixnetKernelThreads() { return static_cast<int>(mixnet::Pool::instance().slots()); }

// Runs later kernel calls on ``threads`` threads (at least 1), process-wide.
void MixnetSetKernelThreads(int threads) { mixnet::Pool::instance().resize(threads); }

}  // extern "C"
