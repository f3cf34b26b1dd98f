// libsystemd: sd_notify (agentd under systemd) and sd_journal_sendv (service logs to journald).
// SD_JOURNAL_SUPPRESS_LOCATION: the CODE_FILE/CODE_LINE fields would name our forwarder, not the
// service whose line it is.
#define SD_JOURNAL_SUPPRESS_LOCATION 1
#include <systemd/sd-daemon.h>
#include <systemd/sd-journal.h>
