/* Symbol visibility: the library is built with -fvisibility=hidden and exports only TS_API. */
#ifndef TESSERA_EXPORT_H
#define TESSERA_EXPORT_H

#define TS_API        __attribute__((visibility("default")))
#define TS_MUST_CHECK __attribute__((warn_unused_result))

#endif
