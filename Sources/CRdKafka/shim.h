#ifndef UPLOAD_PURGER_CRDKAFKA_SHIM_H
#define UPLOAD_PURGER_CRDKAFKA_SHIM_H

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#endif
