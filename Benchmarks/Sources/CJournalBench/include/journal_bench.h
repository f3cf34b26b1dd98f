// journal_bench.h — supervisor-bench's floor for journald forwarding.
#ifndef JOURNAL_BENCH_H
#define JOURNAL_BENCH_H

#include <stddef.h>

/// Sends every line of `text` (`length` bytes, lines ending in '\n') to journald with
/// sd_journal_sendv, with the fields Flotilla's JournalForwarder sends: MESSAGE, PRIORITY=6,
/// SYSLOG_IDENTIFIER and FLOTILLA_SERVICE (`service`), FLOTILLA_INSTANCE (`instance`),
/// FLOTILLA_STREAM=stdout. Why: the pace journald itself takes these lines at, measured in the
/// same run as forwarding through the supervisor, with nothing in between. Returns the lines
/// sent, or -errno of the first send that failed.
long journal_bench_send_lines(const char *text, size_t length, const char *service, const char *instance);

#endif
