// The C side of the ZeroMQ target: libzmq's header, and the one draft option rnnd uses. Only
// Sources/ZeroMQ imports this module; everything else goes through its Swift wrapper.
#ifndef RNND_CZEROMQ_SHIM_H
#define RNND_CZEROMQ_SHIM_H

#include <zmq.h>

// A CURVE server refuses every client while no ZAP handler is bound (fail closed). zmq.h declares
// it only for draft builds, but libzmq 4.3 takes it in every build (Debian's included).
#ifndef ZMQ_ZAP_ENFORCE_DOMAIN
#define ZMQ_ZAP_ENFORCE_DOMAIN 93
#endif

#endif
