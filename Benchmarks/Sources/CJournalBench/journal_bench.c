#define _GNU_SOURCE
#include "journal_bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <systemd/sd-journal.h>

long journal_bench_send_lines(const char *text, size_t length, const char *service, const char *instance) {
    char identifier[256], service_field[256], instance_field[256];
    snprintf(identifier, sizeof identifier, "SYSLOG_IDENTIFIER=%s", service);
    snprintf(service_field, sizeof service_field, "FLOTILLA_SERVICE=%s", service);
    snprintf(instance_field, sizeof instance_field, "FLOTILLA_INSTANCE=%s", instance);
    // One field is one iovec, so MESSAGE= and the line are copied together, as the forwarder does.
    size_t capacity = 4096;
    char *message = malloc(capacity);
    if (message == NULL) return -12;
    memcpy(message, "MESSAGE=", 8);
    long sent = 0;
    size_t start = 0;
    for (size_t index = 0; index < length; index++) {
        if (text[index] != '\n') continue;
        size_t line = index - start;
        if (line + 8 > capacity) {
            capacity = line + 8;
            char *larger = realloc(message, capacity);
            if (larger == NULL) { free(message); return -12; }
            message = larger;
        }
        memcpy(message + 8, text + start, line);
        struct iovec fields[6] = {
            {message, line + 8},
            {"PRIORITY=6", 10},
            {identifier, strlen(identifier)},
            {service_field, strlen(service_field)},
            {instance_field, strlen(instance_field)},
            {"FLOTILLA_STREAM=stdout", 22},
        };
        int rc = sd_journal_sendv(fields, 6);
        if (rc < 0) { free(message); return rc; }
        sent++;
        start = index + 1;
    }
    free(message);
    return sent;
}
