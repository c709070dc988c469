// The C interface of Debian's libsnappy (libsnappy-dev): block-format compression, which is
// what Prometheus remote write sends.
#include <snappy-c.h>
