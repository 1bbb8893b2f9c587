// The C side of the ZeroMQ target: libzmq's header, and nothing else yet. Only Sources/ZeroMQ
// imports this module; everything else goes through its Swift wrapper.
#ifndef RNND_CZEROMQ_SHIM_H
#define RNND_CZEROMQ_SHIM_H

#include <zmq.h>

#endif
